# Two commands do all the set-up on a fresh machine (each creates or reuses .venv):
#   make demo   - pretrain -> finetune -> test on the embedded toy dataset, prints a results table
#   make test   - the test suite
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: env demo test
env:
	bash tools/setup_env.sh

demo: env
	.venv/bin/dp-chain --toy-data

# Two pytest workers (one per core), each taking whole files so module fixtures run once.
test: env
	$(PY) -m pytest tests -n 2 --dist loadfile $(PYTEST_ARGS)

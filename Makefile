# Two commands do all the set-up on a fresh machine (each creates or reuses .venv):
#   make demo       - pretrain -> finetune -> test on the embedded toy dataset, prints a results table
#   make test       - the test suite
#   make test-fast  - the suite without its slow tests (trainings, real processes): the loop while editing
PY := .venv/bin/python
PYTEST_ARGS ?=
# Two pytest workers (one per core), each taking whole files so module fixtures run once, one
# OpenMP thread each (two threads per worker oversubscribe the cores: a tenth slower).
PYTEST := OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest tests -n 2 --dist loadfile

.PHONY: env demo test test-fast
env:
	bash tools/setup_env.sh

demo: env
	.venv/bin/dp-chain --toy-data

test: env
	$(PYTEST) $(PYTEST_ARGS)

test-fast: env
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

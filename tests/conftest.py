"""Session fixtures shared by every test folder (helpers live in dp_test_utils.py, the tool
server in forked_cli.py, the shared trained runs in shared_runs.py)."""
import gc
import os

import pytest

from dp_test_utils import REPO_ROOT
from forked_cli import close_servers, index_external_configs_once
from shared_runs import BUILDERS, SharedRun, copy_toy_chain, make_toy_set, toy_chain_paths

index_external_configs_once()  # the suite loads zoo configs thousands of times (forked_cli.py)

# fixture -> the shared run it reads (tests using one are marked slow: the run trains)
SHARED_RUN_FIXTURES = {'toy_chain': 'toy_chain', 'toy_chain_copy': 'toy_chain', 'tiny_trained_stage': 'trained_stage',
                       'installed_wheel': 'installed_wheel', 'package_wheel': 'installed_wheel'}


def pytest_collection_finish(session):
    """What importing and collecting left in memory (torch, mmdet, every test module: millions of
    objects) is moved out of the garbage collector's reach: mmengine runs a full ``gc.collect()``
    per dataset it builds, 0.2 s each here, 5 ms after. What tests create is collected as usual."""
    gc.collect()
    gc.freeze()


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items):
    for item in items:
        if any(name in item.fixturenames for name in SHARED_RUN_FIXTURES):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def in_a_scratch_folder(tmp_path, monkeypatch):
    """Every test runs in its own empty folder: nothing it writes to a relative path lands in the
    checkout, and nothing there (``data/``, ``work_dirs/`` after ``make demo``) is found."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def mmdet_default_scope():
    """Every test starts in the ``mmdet`` registry scope, where the package registers its
    modules: a test that built a Runner with another ``default_scope`` (mmengine keeps the
    newest scope process-wide) must not change what the next test's registries resolve."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')


@pytest.fixture(scope='session', autouse=True)
def tool_servers():
    """The forked tool servers of this worker (``forked_cli.py``) end with the session."""
    yield
    close_servers()


@pytest.fixture(scope='session', autouse=True)
def shared_runs(tool_servers, tmp_path_factory, request) -> dict:
    """The shared runs this session's tests read, started in the background as it begins;
    at its end, the check that no test changed them."""
    base = tmp_path_factory.getbasetemp()
    # an xdist worker's basetemp is <session tmp>/popen-gwN; their parent is the session's
    root = base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base
    runs = {name: SharedRun(name, str(root / 'shared')) for name in BUILDERS}
    needed = {run for item in request.session.items for fixture, run in SHARED_RUN_FIXTURES.items()
              if fixture in item.fixturenames}
    for name in sorted(needed):
        runs[name].start()
    yield runs
    changed = {name: changes for name, run in runs.items() if (changes := run.changes())}
    assert not changed, f'tests changed shared runs (copy them: toy_chain_copy): {changed}'


@pytest.fixture(scope='session')
def toy_chain(shared_runs) -> dict:
    """The toy chain (``dp-chain`` on tiny configs: pretrain 1 epoch, finetune 1 epoch, test;
    4 iterations per stage, TensorBoard on), read-only: configs, work dirs, output, report."""
    run = shared_runs['toy_chain']
    return toy_chain_paths(run.folder, run.result())


@pytest.fixture()
def toy_chain_copy(toy_chain, tmp_path) -> dict:
    """A writable copy of the toy chain's configs and work dirs, for tests that run it on."""
    return copy_toy_chain(toy_chain, str(tmp_path / 'chain'))


@pytest.fixture(scope='session')
def tiny_trained_stage(shared_runs) -> dict:
    """A 2-iteration training of the tiny pretrain config, run the way the chain runs a stage
    (``chain.terminal.run_stage`` reading a ``dp-train`` child), read-only: its work dir, the
    config and what the terminal showed."""
    run = shared_runs['trained_stage']
    return dict(run.result(), work_dir=os.path.join(run.folder, 'work'))


@pytest.fixture(scope='session')
def installed_wheel(shared_runs) -> dict:
    """The package built as a wheel (from a copy of the checkout) and installed with ``--no-deps`` in
    a fresh virtual environment that sees the project's stack but not the checkout, read-only:
    ``wheel``, ``python``, ``bindir`` (console scripts), ``site`` (its site-packages)."""
    return shared_runs['installed_wheel'].result()


@pytest.fixture(scope='session')
def package_wheel(installed_wheel) -> str:
    """The path of the package's wheel (built once per session, read-only)."""
    return installed_wheel['wheel']


@pytest.fixture(scope='session')
def tiny_coco_root(tmp_path_factory) -> str:
    """The tiny toy COCO set (8 train / 4 val images, long side 160-224) of this worker."""
    return make_toy_set(str(tmp_path_factory.mktemp('tiny_coco')))


@pytest.fixture(scope='session')
def toy_model_checkpoint(tmp_path_factory) -> str:
    """The toy finetune detector at random init (seed 0), its class names in the meta: a
    checkpoint that fits the toy configs, for tools that need one but not a trained one."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from dp_test_utils import TOY_FINETUNE
    init_default_scope('mmdet')
    cfg = Config.fromfile(TOY_FINETUNE)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    path = str(tmp_path_factory.mktemp('toy_model') / 'toy_random.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': dict(cfg.metainfo)}}, path)
    return path


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO_ROOT

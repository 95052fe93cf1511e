"""Session fixtures shared by every test folder (helpers live in dp_test_utils.py)."""
import pytest

from dp_test_utils import REPO_ROOT


@pytest.fixture(scope='session')
def tiny_coco_root(tmp_path_factory) -> str:
    """A small toy COCO set (8 train / 4 val images, long side 160-224) shared by the session."""
    from direct_pretrain.datasets import ToyCocoSpec, generate_toy_coco
    root = str(tmp_path_factory.mktemp('tiny_coco'))
    generate_toy_coco(root, ToyCocoSpec(num_train=8, num_val=4, min_long_side=160, max_long_side=224,
                                        max_objects=3, seed=1))
    return root


@pytest.fixture(autouse=True)
def mmdet_default_scope():
    """Every test starts in the ``mmdet`` registry scope, where the package registers its
    modules: a test that built a Runner with another ``default_scope`` (mmengine keeps the
    newest scope process-wide) must not change what the next test's registries resolve."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO_ROOT


@pytest.fixture(scope='session')
def tiny_trained_stage(tmp_path_factory, tiny_coco_root) -> dict:
    """A 2-iteration training of the tiny pretrain config, run the way the chain runs a stage
    (``dp-train`` in a child process through ``chain.terminal.run_stage``): its work dir, the
    config and what the terminal showed. Shared by log-reading tests."""
    import io
    import sys

    from direct_pretrain.chain.terminal import run_stage
    from dp_test_utils import python_env, write_tiny_stage_configs
    tmp = tmp_path_factory.mktemp('trained_stage')
    pre_cfg, _ = write_tiny_stage_configs(str(tmp / 'cfg'), tiny_coco_root)
    work_dir = str(tmp / 'work')
    terminal = io.StringIO()
    # 8 images at 4 per batch: 2 iterations in the one epoch
    seconds = run_stage('pretrain', [sys.executable, '-m', 'direct_pretrain.cli.train', pre_cfg, '--work-dir',
                                     work_dir, '--cfg-options', 'train_dataloader.batch_size=4'],
                        work_dir, env=python_env(), total_epochs=1, out=terminal)
    return dict(work_dir=work_dir, config=pre_cfg, terminal=terminal.getvalue(), seconds=seconds)

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


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO_ROOT

"""Session fixtures for the Detectron converter tests: real-shape R-50 / Mask R-CNN pickles.

Generated once per session (about 0.5 s, 100-180 MB in a temp dir) in Detectron's own
format: the ImageNet file flat, the model-zoo file nested with momentum and cfg.
"""
from typing import Dict

import numpy as np
import pytest

from detectron_fixtures import detectron_shapes, dump_py2_pickle, materialize, write_detectron_pkl


@pytest.fixture(scope='session')
def r50_blobs() -> Dict[str, np.ndarray]:
    return materialize(detectron_shapes('R-50'), seed=1)


@pytest.fixture(scope='session')
def r50_pkl(tmp_path_factory, r50_blobs) -> str:
    """MSRA ``R-50.pkl`` look-alike: flat Python-2 pickle with the fc1000/conv1_b leftovers."""
    path = str(tmp_path_factory.mktemp('detectron') / 'R-50.pkl')
    dump_py2_pickle(r50_blobs, path)
    return path


@pytest.fixture(scope='session')
def mask_rcnn_blobs() -> Dict[str, np.ndarray]:
    return materialize(detectron_shapes('mask_rcnn_R-50-FPN'), seed=2)


@pytest.fixture(scope='session')
def mask_rcnn_pkl(tmp_path_factory, mask_rcnn_blobs) -> str:
    """``model_final.pkl`` look-alike: {'blobs': ... + *_momentum, 'cfg': yaml}, Python-2 pickle."""
    path = str(tmp_path_factory.mktemp('detectron') / 'model_final.pkl')
    write_detectron_pkl(path, mask_rcnn_blobs, nested=True, momentum=True)
    return path

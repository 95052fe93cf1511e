"""The checkpoint pre-check names the path and the problem for every kind of bad file,
reads no tensor of a good zip checkpoint, and never executes a crafted pickle."""
import pickle
import zipfile

import numpy as np
import pytest
import torch
from dp_test_utils import Payload
from mmengine.logging import HistoryBuffer

from direct_pretrain.checkpoint.checkpoint_check import check_checkpoint_file
from direct_pretrain.errors import CheckpointCheckError


@pytest.fixture(scope='module')
def good(tmp_path_factory) -> str:
    """An mmengine-like checkpoint: tensors, numpy values and a HistoryBuffer in meta."""
    path = tmp_path_factory.mktemp('ckpt') / 'epoch_1.pth'
    buffer = HistoryBuffer()
    buffer.update(1.5)
    torch.save(dict(state_dict={'w': torch.randn(64, 64)},
                    meta=dict(epoch=1, seed=np.int64(3), hist=buffer, arr=np.arange(3))), path)
    return str(path)


def problem_of(path, **kwargs):
    with pytest.raises(CheckpointCheckError) as info:
        check_checkpoint_file(path, **kwargs)
    assert path in str(info.value) or info.value.path in str(info.value)
    return info.value


def test_good_zip_checkpoint(good):
    assert check_checkpoint_file(good) == 'torch'
    # the check agrees with the package's loader
    from direct_pretrain.runtime.safe_load import safe_torch_load
    assert safe_torch_load(good)['meta']['epoch'] == 1


def test_missing_and_folder(tmp_path):
    assert problem_of(str(tmp_path / 'none.pth')).problem == 'missing'
    assert problem_of(str(tmp_path)).problem == 'not_a_file'


def test_empty(tmp_path):
    path = tmp_path / 'empty.pth'
    path.write_bytes(b'')
    error = problem_of(str(path), what='load_from')
    assert error.problem == 'empty' and str(error).startswith(f"load_from '{path}' is empty")


@pytest.mark.parametrize('keep', [0.5, 0.99, 30])
def test_truncated_zip(good, tmp_path, keep):
    data = open(good, 'rb').read()
    cut = int(len(data) * keep) if keep < 1 else keep
    path = tmp_path / 'cut.pth'
    path.write_bytes(data[:cut])
    error = problem_of(str(path))
    assert error.problem == 'truncated' and 'central directory' in str(error)
    with pytest.raises(Exception):  # torch agrees that the file is unreadable
        torch.load(str(path), weights_only=True)


def test_zip_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / 'notes.pth'
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr('readme.txt', 'hello')
    assert problem_of(str(path)).problem == 'not_a_checkpoint'


@pytest.mark.parametrize('content', [b'{"a": 1}', b'\x89PNG\r\n\x1a\n0000', pickle.dumps({'w': [1, 2]}, protocol=2)])
def test_other_files_are_not_checkpoints(tmp_path, content):
    path = tmp_path / 'x.pth'
    path.write_bytes(content)
    error = problem_of(str(path))
    assert error.problem == 'not_a_checkpoint'
    if content.startswith(b'\x80'):
        assert 'detectron://' in str(error)


def test_unsafe_zip_is_refused_without_executing(tmp_path):
    target = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': Payload(str(target))}, path)
    error = problem_of(str(path))
    assert error.problem == 'unsafe' and 'system' in str(error)
    assert not target.exists()
    # without the globals check the structure alone is fine
    assert check_checkpoint_file(str(path), check_globals=False) == 'torch'


def test_legacy_torch_format(tmp_path):
    path = tmp_path / 'legacy.pth'
    torch.save({'state_dict': {'w': torch.ones(1000)}}, path, _use_new_zipfile_serialization=False)
    assert check_checkpoint_file(str(path)) == 'torch_legacy'
    cut = tmp_path / 'legacy_cut.pth'
    cut.write_bytes(path.read_bytes()[:2000])
    assert problem_of(str(cut)).problem == 'truncated'


def test_detectron_pickles_and_remote_paths(tmp_path):
    path = tmp_path / 'model_final.pkl'
    path.write_bytes(pickle.dumps({'blobs': {}}, protocol=2))
    assert check_checkpoint_file(f'detectron://{path}') == 'detectron'
    assert check_checkpoint_file(str(path), kind='detectron') == 'detectron'
    empty = tmp_path / 'e.pkl'
    empty.write_bytes(b'')
    assert problem_of(f'detectron://{empty}').problem == 'empty'
    assert check_checkpoint_file('https://example.com/x.pth') is None

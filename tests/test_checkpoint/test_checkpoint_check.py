"""The checkpoint pre-check names the path and the problem for every kind of bad file,
reads no tensor of a good zip checkpoint, and never executes a crafted pickle."""
import pickle
import zipfile

import numpy as np
import pytest
import torch
from dp_test_utils import Payload
from mmengine.logging import HistoryBuffer

from direct_pretrain.checkpoint.checkpoint_check import check_checkpoint_file, inspect_checkpoint_file
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


# --- what the pre-check reads of a zip: storage records, their sizes, the top level ---------------

def _rewrite_zip(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)
    return str(dst)


def test_storage_records_must_be_present_and_as_large_as_declared(good, tmp_path):
    missing = _rewrite_zip(good, tmp_path / 'missing.pth', lambda n, d: None if n.endswith('/data/0') else d)
    error = problem_of(missing)
    assert error.problem == 'truncated' and 'tensor storage record(s) that the zip does not hold' in str(error)
    short = _rewrite_zip(good, tmp_path / 'short.pth', lambda n, d: d[:-4] if n.endswith('/data/0') else d)
    error = problem_of(short)
    assert 'holds 16380 bytes but its storage declares 4096 elements of 4 byte(s) (16384 bytes)' in str(error)
    for path in (missing, short):  # torch agrees: neither loads
        with pytest.raises(Exception):
            torch.load(path, weights_only=True)


def test_state_shapes_come_from_the_pickle_record(tmp_path):
    path = tmp_path / 'views.pth'
    base = torch.randn(6, 5)
    torch.save({'state_dict': {'a': base, 'row': base[2], 'col': base[:, 1:3], 'n': torch.tensor(3),
                               'p': torch.nn.Parameter(torch.ones(4, 2)), 'h': torch.ones(3, dtype=torch.half)}}, path)
    contents = inspect_checkpoint_file(str(path))
    loaded = torch.load(path, weights_only=True)['state_dict']
    assert contents.state_shapes == {k: tuple(v.shape) for k, v in loaded.items()}
    flat = tmp_path / 'flat.pth'
    torch.save({'w': torch.zeros(2, 3)}, flat)  # a bare name -> tensor mapping is a checkpoint too
    assert inspect_checkpoint_file(str(flat)).state_shapes == {'w': (2, 3)}


def test_only_the_pickle_record_is_read(good, monkeypatch):
    """Cheap: of the zip members, only data.pkl is opened (the directory gives the sizes)."""
    opened = []
    original = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(name if isinstance(name, str) else name.filename)
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, 'open', spy)
    assert check_checkpoint_file(good) == 'torch'
    assert opened and all(name.endswith('/data.pkl') for name in opened), opened


@pytest.mark.parametrize('obj, expected', [
    (torch.ones(3), 'holds a tensor at its top level'),
    ([{'w': torch.ones(2)}], 'holds a list at its top level'),
    ({'meta': {'epoch': 1}, 'model': {'w': torch.ones(2)}},
     'holds a dict without a "state_dict" entry (keys: meta, model)'),
    ({'state_dict': {'w': torch.ones(2), 'step': 3}}, 'has 1 "state_dict" entry that is not a tensor (step)'),
    ({'state_dict': [torch.ones(2)]}, 'has a "state_dict" entry that is not a mapping of tensors'),
])
@pytest.mark.parametrize('zipped', [True, False], ids=['zip', 'legacy'])
def test_top_level_must_be_a_checkpoint_dict(tmp_path, obj, expected, zipped):
    path = tmp_path / 'odd.pth'
    torch.save(obj, path, _use_new_zipfile_serialization=zipped)
    error = problem_of(str(path))
    assert error.problem == 'not_a_checkpoint' and expected in str(error)


def test_release_scheme_checks_the_allow_list(tmp_path):
    """direct-release:// files are held against the allow-list their reader uses (the pre-check once skipped it)."""
    target = tmp_path / 'pwned'
    path = tmp_path / 'release.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': Payload(str(target))}, path)
    error = problem_of(f'direct-release://{path}', what='load_from')
    assert error.problem == 'unsafe' and 'system' in str(error)
    assert str(error).startswith(f"load_from '{path}' is unsafe")
    assert not target.exists()


# --- Detectron pickles: scanned, never unpickled -------------------------------------------------

@pytest.mark.parametrize('protocol', [0, 2, 4])
def test_detectron_pickles_of_every_protocol_pass_and_hostile_ones_are_refused(tmp_path, protocol):
    from direct_pretrain.checkpoint.detectron.reader import read_detectron_pickle
    good_pkl = tmp_path / 'model_final.pkl'
    good_pkl.write_bytes(pickle.dumps({'blobs': {'conv1_w': np.ones((2, 3), np.float32), 'n': np.float64(2)},
                                       'cfg': 'MODEL: {}'}, protocol=protocol))
    assert check_checkpoint_file(f'detectron://{good_pkl}') == 'detectron'
    assert read_detectron_pickle(str(good_pkl))['blobs']['conv1_w'].shape == (2, 3)  # the reader agrees
    target = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pkl'
    evil.write_bytes(pickle.dumps({'blobs': {'conv1_w': Payload(str(target))}}, protocol=protocol))
    error = problem_of(f'detectron://{evil}')
    assert error.problem == 'unsafe' and 'system' in str(error) and not target.exists()


def test_detectron_stack_global_with_hidden_names_is_refused(tmp_path):
    """STACK_GLOBAL takes its names from the stack: 'posix', 'system' pushed, a third string
    pushed and popped - a scanner that reads the last two strings would see 'system', 'numpy'."""
    evil = tmp_path / 'hidden.pkl'
    evil.write_bytes(b'\x80\x04\x8c\x05posix\x8c\x06system\x8c\x05numpy0\x93\x8c\x05touch\x85R.')
    error = problem_of(f'detectron://{evil}')
    assert error.problem == 'unsafe' and 'STACK_GLOBAL' in str(error)


@pytest.mark.parametrize('content, problem', [
    (pickle.dumps({'blobs': {'w': np.ones(1000, np.float32)}}, protocol=2)[:-200], 'truncated'),
    (pickle.dumps([np.ones(3)], protocol=2), 'not_a_checkpoint'),
    (pickle.dumps({'w': 1}, protocol=2)[:-1], 'truncated'),  # no STOP
])
def test_detectron_broken_pickles(tmp_path, content, problem):
    path = tmp_path / 'broken.pkl'
    path.write_bytes(content)
    assert problem_of(f'detectron://{path}').problem == problem

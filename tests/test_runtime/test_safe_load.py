"""Weights-only loading of mmengine checkpoints: what they hold loads, nothing else does."""
import io
import pickle

import numpy as np
import pytest
import torch
from dp_test_utils import Payload
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

from direct_pretrain.errors import UnsafeCheckpointError
from direct_pretrain.runtime.safe_load import safe_torch_load


def mmengine_like_checkpoint() -> dict:
    """What mmengine's Runner.save_checkpoint writes: tensors, numpy meta, message hub."""
    hub = MessageHub.get_instance('safe_load_test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', np.float64(0.25))
    hub.update_info('iter', 3)
    return dict(meta=dict(epoch=1, iter=3, seed=np.int64(7), hist=np.arange(4, dtype=np.float32),
                          dtype=np.dtype('float32'), message_hub=hub.state_dict()),
                state_dict={'w': torch.randn(2, 3)}, optimizer={'state': {}, 'param_groups': []})


def test_mmengine_checkpoint_round_trips_under_weights_only(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    torch.save(mmengine_like_checkpoint(), path)
    # The stock loader fails under torch >= 2.6; our scheme is what mmengine now uses.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    buffers = loaded['meta']['message_hub']['log_scalars']
    assert isinstance(buffers['train/loss'], HistoryBuffer)
    assert buffers['train/loss'].mean() == pytest.approx(0.375)
    assert loaded['meta']['seed'] == 7 and loaded['meta']['hist'].dtype == np.float32


def test_code_execution_payload_is_refused_with_no_side_effect(tmp_path):
    target = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': Payload(str(target))}, path)
    with pytest.raises(UnsafeCheckpointError, match=r'posix\.system|os\.system'):
        _load_checkpoint(str(path), map_location='cpu')
    assert not target.exists()


class Custom:
    """A harmless class that is simply not on the allow-list."""


def test_unknown_class_is_named_in_the_error(tmp_path):
    path = tmp_path / 'odd.pth'
    torch.save({'meta': {'custom': Custom(), 'frac': __import__('fractions').Fraction(1, 3)}}, path)
    with pytest.raises(UnsafeCheckpointError) as info:
        safe_torch_load(str(path))
    assert f'{Custom.__module__}.Custom' in str(info.value) and 'fractions.Fraction' in str(info.value)


def _getattr_payload(obj_module: str, obj_name: str, attr: str) -> bytes:
    """A protocol-2 pickle that calls builtins.getattr(<global>, attr)."""
    return (b'\x80\x02cbuiltins\ngetattr\nc' + obj_module.encode() + b'\n' + obj_name.encode() + b'\nX' +
            len(attr).to_bytes(4, 'little') + attr.encode() + b'\x86R.')


def test_getattr_is_limited_to_history_buffer_statistics():
    ok = pickle.loads(_getattr_payload('mmengine.logging.history_buffer', 'HistoryBuffer', 'mean'))
    assert ok is HistoryBuffer.mean  # the payload format itself is valid
    buf = io.BytesIO()
    torch.save({'x': 1}, buf)  # a zip checkpoint whose data.pkl we replace
    import zipfile
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    for attr in ('__init__', '__class__', 'update'):
        out = io.BytesIO()
        with zipfile.ZipFile(out, 'w') as dst:
            for item in src.infolist():
                data = src.read(item.filename)
                if item.filename.endswith('data.pkl'):
                    data = _getattr_payload('mmengine.logging.history_buffer', 'HistoryBuffer', attr)
                dst.writestr(item.filename, data)
        out.seek(0)
        with pytest.raises(UnsafeCheckpointError, match=f"getattr.*'{attr}'"):
            safe_torch_load(out)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        _load_checkpoint(str(tmp_path / 'missing.pth'))

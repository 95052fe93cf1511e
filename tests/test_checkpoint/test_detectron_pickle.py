"""Safe reading of Detectron pickles: both layouts, Python 2 and 3 encodings, refusals."""
import builtins
import io
import os
import pickle

import numpy as np
import pytest
from detectron_fixtures import (add_momentum, detectron_cfg_yaml, detectron_shapes, dump_py2_pickle, dump_py3_pickle,
                                materialize)

from direct_pretrain.checkpoint import convert_detectron
from direct_pretrain.checkpoint.detectron.errors import DetectronFormatError, UnsafeDetectronPickleError
from direct_pretrain.checkpoint.detectron.reader import load_detectron_blobs, read_detectron_pickle
from direct_pretrain.errors import UnsafeCheckpointError


def _small_blobs():
    blobs = materialize({'conv1_w': (4, 3, 3, 3), 'res_conv1_bn_s': (4, ), 'fc1000_b': (10, )}, seed=3)
    blobs['int_blob'] = np.arange(6, dtype=np.int32).reshape(2, 3)
    blobs['byte_blob'] = np.arange(5, dtype=np.uint8)
    return blobs


def test_py2_nested_file_matches_plain_pickle(tmp_path):
    """The restricted reader returns what an unrestricted latin-1 pickle.load returns."""
    blobs = _small_blobs()
    path = str(tmp_path / 'model_final.pkl')
    dump_py2_pickle(dict(blobs=add_momentum(blobs), cfg=detectron_cfg_yaml(stride_1x1=False)), path)
    with open(path, 'rb') as handle:
        reference = pickle.load(handle, encoding='latin1')  # trusted fixture only
    raw = read_detectron_pickle(path)
    assert set(raw['blobs']) == set(reference['blobs'])
    for name, value in reference['blobs'].items():
        assert raw['blobs'][name].dtype == value.dtype
        np.testing.assert_array_equal(raw['blobs'][name], value)

    loaded = load_detectron_blobs(path)
    assert loaded.layout == 'nested'
    assert set(loaded.blobs) == set(blobs)
    for name, value in blobs.items():
        np.testing.assert_array_equal(loaded.blobs[name], value)
    assert loaded.momentum == sorted(n for n in add_momentum(blobs) if n.endswith('_momentum'))
    assert loaded.momentum and not any(n.endswith('_momentum') for n in loaded.blobs)
    # the cfg's Python tags are read as plain data, nothing is constructed
    assert loaded.cfg_value('RESNETS.STRIDE_1X1') is False
    assert loaded.cfg_value('RETINANET.ASPECT_RATIOS') == [1.0, 2.0, 0.5]
    assert loaded.cfg_value('MODEL.NUM_CLASSES') == 81


def test_py3_flat_file_and_open_handle(tmp_path):
    """Python 3 protocol 2 stores bytes via _codecs.encode; flat layout; file objects work."""
    blobs = _small_blobs()
    path = str(tmp_path / 'R-50.pkl')
    dump_py3_pickle(blobs, path)
    with open(path, 'rb') as handle:
        assert b'_codecs' in handle.read()
    with open(path, 'rb') as handle:
        loaded = load_detectron_blobs(handle)
    assert loaded.layout == 'flat' and loaded.cfg is None and loaded.momentum == []
    for name, value in blobs.items():
        np.testing.assert_array_equal(loaded.blobs[name], value)


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class _OpenWrite:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (self.marker, 'w')


@pytest.mark.parametrize('payload,refused', [(_System, 'system'), (_OpenWrite, 'open')])
@pytest.mark.parametrize('nested', [True, False])
def test_malicious_pickle_is_refused_without_side_effect(tmp_path, payload, refused, nested):
    marker = tmp_path / 'pwned'
    blobs = {'conv1_w': np.zeros((2, 3, 1, 1), np.float32), 'evil': payload(str(marker))}
    path = str(tmp_path / 'evil.pkl')
    with open(path, 'wb') as handle:
        pickle.dump(dict(blobs=blobs) if nested else blobs, handle, protocol=2)
    with pytest.raises(UnsafeDetectronPickleError, match=refused) as info:
        convert_detectron(path)
    assert path in str(info.value) and 'Nothing was executed' in str(info.value)
    assert isinstance(info.value, UnsafeCheckpointError)  # callers guarding mmengine files catch it too
    assert not marker.exists()


def test_codecs_encode_is_latin1_only(tmp_path):
    """The one allowed helper refuses anything but latin-1 str encoding."""
    evil = b'\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00utf-7\x86R.'
    with pytest.raises(UnsafeDetectronPickleError, match='latin-1'):
        read_detectron_pickle(io.BytesIO(evil))


@pytest.mark.parametrize('content,match', [
    (b'\x80\x02]q\x00.', 'list, not a dict'),
    (b'\x80\x02}q\x00(U\x01aq', 'not a readable Detectron pickle'),
])
def test_malformed_files(tmp_path, content, match):
    path = tmp_path / 'bad.pkl'
    path.write_bytes(content)
    with pytest.raises(DetectronFormatError, match=match):
        load_detectron_blobs(str(path))


def test_object_arrays_and_missing_file(tmp_path):
    with pytest.raises(DetectronFormatError, match="'names' has dtype object"):
        load_detectron_blobs({'names': np.array(['a', None], dtype=object)})
    with pytest.raises(FileNotFoundError, match='nope.pkl'):
        load_detectron_blobs(str(tmp_path / 'nope.pkl'))


def test_real_shape_imagenet_file(r50_pkl, r50_blobs):
    """The MSRA R-50.pkl look-alike (flat, 162 blobs incl. leftovers) reads back bit-exactly."""
    loaded = load_detectron_blobs(r50_pkl)
    assert loaded.layout == 'flat' and set(loaded.blobs) == set(detectron_shapes('R-50'))
    for name in ('conv1_w', 'res4_5_branch2c_bn_s', 'fc1000_w'):
        np.testing.assert_array_equal(loaded.blobs[name], r50_blobs[name])

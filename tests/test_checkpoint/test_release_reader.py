"""Reading release files: meta under weights_only, what is dropped, refusals, row inference.

Key-level tests use the release tables' names with one-element tensors (no target model);
full-size files are exercised in test_release_rows.py.
"""
import logging
import os.path as osp
import sys
import types
from collections import OrderedDict

import pytest
import torch
from dp_test_utils import Payload
from release_fixtures import COCO_CLASSES, release_meta, release_optimizer, write_release_checkpoint

from direct_pretrain.checkpoint.release.converter import convert_release, read_release_checkpoint
from direct_pretrain.checkpoint.release.errors import ReleaseArchError, ReleaseFormatError, ReleaseKeysError
from direct_pretrain.checkpoint.release.mapping import RELEASE_ARCHS, build_table, describe_release_meta
from direct_pretrain.errors import UnsafeCheckpointError


def _keys_state(arch: str) -> 'OrderedDict[str, torch.Tensor]':
    return OrderedDict((rule.source, torch.full((1, ), float(i))) for i, rule in enumerate(build_table(
        RELEASE_ARCHS[arch])))


def test_release_meta_optimizer_and_amp_load_weights_only(tmp_path, caplog):
    state = _keys_state('mask-swin')
    meta = release_meta('mask-swin', 'pre-trained', 'P3x')
    path = write_release_checkpoint(str(tmp_path / 'swin.pth'), state, meta, release_optimizer(state, 'mask-swin'),
                                    amp=True)
    with caplog.at_level(logging.INFO, logger='direct_pretrain.checkpoint.release.converter'):
        ckpt = read_release_checkpoint(path)
    assert ckpt.meta == meta  # config text, CLASSES, versions, epoch, hook_msgs: all kept
    assert ckpt.meta['CLASSES'] == COCO_CLASSES
    assert list(ckpt.state_dict) == list(state)
    dropped = ' | '.join(ckpt.dropped)
    assert 'optimizer state (' in dropped and 'parameter states' in dropped and 'apex amp state' in dropped
    assert any('dropped' in r.getMessage() and 'optimizer' in r.getMessage() for r in caplog.records)


def test_legacy_torch_format_and_module_prefix(tmp_path):
    """Files from torch < 1.6 (non-zip) and of a wrapped model load the same."""
    state = _keys_state('faster')
    wrapped = OrderedDict((f'module.{k}', v) for k, v in state.items())
    path = write_release_checkpoint(str(tmp_path / 'old.pth'), wrapped, release_meta('faster', 'fine-tuned'),
                                    release_optimizer(state, 'faster'), legacy=True)
    out, report = convert_release(path)
    assert report.arch['name'] == 'faster' and report.stage == 'fine-tuned' and report.row == 'faster'
    assert list(out) == list(state) and torch.equal(out['rpn_head.rpn_cls.weight'], state['rpn_head.rpn_cls.weight'])


def test_classes_become_dataset_meta(tmp_path):
    from direct_pretrain.checkpoint.release.scheme import load_from_release
    state = _keys_state('retinanet')
    path = write_release_checkpoint(str(tmp_path / 'r.pth'), state, release_meta('retinanet', 'fine-tuned'))
    checkpoint = load_from_release(f'direct-release://{path}')
    assert checkpoint['meta']['dataset_meta']['classes'] == COCO_CLASSES
    assert checkpoint['meta']['release_meta']['mmdet_version'].startswith('2.11')
    assert checkpoint['meta']['release_conversion']['row'] == 'retinanet'


@pytest.fixture
def fake_mmcv1_config(monkeypatch):
    """mmcv 1.x's ConfigDict (an addict.Dict that pickles itself as its state), importable as
    ``mmcv.utils.config.ConfigDict`` while the test writes a file that holds one."""
    module = types.ModuleType('mmcv.utils.config')

    class ConfigDict(dict):

        def __getstate__(self):
            return self

        def __setstate__(self, state):
            self.update(state)

    ConfigDict.__module__, ConfigDict.__qualname__ = 'mmcv.utils.config', 'ConfigDict'
    module.ConfigDict = ConfigDict
    monkeypatch.setitem(sys.modules, 'mmcv.utils.config', module)
    return ConfigDict


def test_an_mmcv1_object_in_meta_refuses_the_file_naming_its_type(tmp_path, fake_mmcv1_config):
    """The release never writes one, but a file that holds mmcv 1.x's ConfigDict is not read
    half-way: the error names the type (and nothing is executed)."""
    meta = release_meta('cascade', 'pre-trained')
    meta['cfg_obj'] = fake_mmcv1_config(model=dict(type='CascadeRCNN'), lr=0.08)
    path = write_release_checkpoint(str(tmp_path / 'c.pth'), _keys_state('cascade'), meta)
    with pytest.raises(UnsafeCheckpointError, match='mmcv.utils.config.ConfigDict'):
        read_release_checkpoint(path)


def test_unsafe_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / 'pwned'
    state = _keys_state('faster')
    meta = release_meta('faster', 'pre-trained')
    meta['evil'] = Payload(str(marker))
    path = write_release_checkpoint(str(tmp_path / 'evil.pth'), state, meta)
    with pytest.raises(UnsafeCheckpointError, match='posix.system|os.system|nt.system'):
        read_release_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize('arch', list(RELEASE_ARCHS))
def test_each_layout_is_recognised_from_its_keys(arch):
    from direct_pretrain.checkpoint.release.mapping import infer_arch
    assert infer_arch(_keys_state(arch)).name == arch


def test_a_file_of_no_row_names_the_closest(tmp_path):
    """R-101-like Mask R-CNN: the mask row plus 17 more res4 blocks."""
    state = _keys_state('mask')
    for block in range(6, 23):
        for part in ('conv1.weight', 'bn1.weight'):
            state[f'backbone.layer3.{block}.{part}'] = torch.zeros(1)
    path = write_release_checkpoint(str(tmp_path / 'r101.pth'), state, {})
    with pytest.raises(ReleaseArchError, match=r"closest is 'mask'.*not the 34 keys it has.*backbone\.layer3\.1"):
        convert_release(path)


def test_an_mmdet3_file_is_not_taken_for_a_release_file():
    state = _keys_state('mask-swin')
    state['backbone.stages.0.blocks.0.attn.w_msa.qkv.weight'] = torch.zeros(1)
    from direct_pretrain.checkpoint.release.converter import ReleaseCheckpoint
    with pytest.raises(ReleaseFormatError, match='already in MMDetection 3.x layout'):
        convert_release(ReleaseCheckpoint('<mmdet3>', state))


def test_explicit_arch_that_does_not_fit_lists_the_keys(tmp_path):
    path = write_release_checkpoint(str(tmp_path / 'f.pth'), _keys_state('faster'), {})
    with pytest.raises(ReleaseKeysError, match=r'roi_head\.mask_head\.'):
        convert_release(path, 'mask')
    out, report = convert_release(path, 'mask', allow_missing=True)
    assert len(report.missing_target) == 12 and 'roi_head.mask_head.upsample.weight' not in out


def test_not_a_checkpoint(tmp_path):
    path = str(tmp_path / 'list.pth')
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ReleaseFormatError, match='holds a list'):
        read_release_checkpoint(path)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        read_release_checkpoint(osp.join(str(tmp_path), 'missing.pth'))


@pytest.mark.parametrize('arch,stage,schedule', [('mask', 'pre-trained', 'P1x'), ('mask', 'pre-trained', 'P3x'),
                                                 ('mask', 'fine-tuned', 'P1x'), ('mask', 'fine-tuned', 'P3x'),
                                                 ('mask-swin', 'fine-tuned', 'P3x'), ('faster', 'pre-trained', 'P1x')])
def test_stage_and_schedule_from_meta(arch, stage, schedule):
    described = describe_release_meta(release_meta(arch, stage, schedule))
    assert (described.stage, described.schedule) == (stage, schedule)
    assert describe_release_meta({}).stage == 'unknown'

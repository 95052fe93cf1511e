"""All 14 published checkpoints (7 rows, pre-trained and fine-tuned) load into this package's
fine-tune / test configs with 0 missing and 0 unexpected keys - through the converter and
through ``load_from='direct-release://...'`` checked by the package's ``LoadFromCheckHook``.

The files are full-size synthetic release checkpoints (release_fixtures.py: mmdet 2.x names
and shapes, meta, optimizer state, apex amp state for Swin); the targets are the real models
of the fine-tune configs (which are also the test configs) as installed with the package and
found by ``dp-convert-release`` (``default_config``), built once per layout.
"""
import json
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint
from release_fixtures import release_meta, release_optimizer, release_state_dict, write_release_checkpoint

from direct_pretrain.checkpoint.release.converter import convert_release
from direct_pretrain.checkpoint.release.mapping import RELEASE_ROWS
from direct_pretrain.cli.convert_release import default_config
from direct_pretrain.engine.hooks import LoadFromCheckHook

pytestmark = pytest.mark.slow  # full-size detectors per release row

STAGES = ('pre-trained', 'fine-tuned')
_CONFIGS = {}
_MODELS = {}
_STATES = {}


def finetune_model(config: str) -> torch.nn.Module:
    """The model of a fine-tune config (P1x / P3x pairs share one), built on CPU once."""
    from mmdet.registry import MODELS
    if config not in _CONFIGS:  # mmdet:: lookups are slow
        _CONFIGS[config] = Config.fromfile(config)
    cfg = _CONFIGS[config]
    key = repr(cfg.model.to_dict())
    if key not in _MODELS:
        init_default_scope('mmdet')
        _MODELS[key] = MODELS.build(cfg.model)
    return _MODELS[key]


def state_for(arch: str):
    """One full-size release state dict at a time (the rows are ordered by layout)."""
    if arch not in _STATES:
        _STATES.clear()
        _STATES[arch] = release_state_dict(arch)
    return _STATES[arch]


@pytest.mark.parametrize('stage', STAGES)
@pytest.mark.parametrize('row', RELEASE_ROWS, ids=[r.name for r in RELEASE_ROWS])
def test_release_checkpoint_loads_into_the_rows_configs(row, stage, tmp_path):
    model = finetune_model(default_config(row.arch, row.schedule))  # the installed config the tool checks
    state = state_for(row.arch)
    path = write_release_checkpoint(str(tmp_path / f'{row.name}_{stage}.pth'), state,
                                    release_meta(row.arch, stage, row.schedule), release_optimizer(state, row.arch),
                                    amp=row.arch == 'mask-swin')

    # 1. The converter (what tools/convert_release.py runs), checked against the model.
    out, report = convert_release(path, 'auto', target=model)
    assert report.ok, report.summary()
    assert (report.row, report.stage, report.schedule) == (row.name, stage, row.schedule)
    assert set(out) == set(model.state_dict())
    assert not report.missing_target and not report.unexpected_target and not report.unused_source
    assert any(line.startswith('optimizer state') for line in report.dropped)
    assert set(report.source_of) == set(out)

    # 2. load_from through the scheme, verified key by key (values too) by LoadFromCheckHook.
    load_from = f'direct-release://{path}'
    load_checkpoint(model, load_from, map_location='cpu', strict=True)
    runner = SimpleNamespace(_load_from=load_from, _resume=False, model=model, rank=0, work_dir=str(tmp_path),
                             logger=MMLogger.get_instance('test_release_rows'))
    LoadFromCheckHook(strict=True).before_train(runner)
    with open(tmp_path / 'load_from_report.json') as f:
        summary = json.load(f)['summary']
    assert summary['num_missing'] == summary['num_unexpected'] == summary['num_shape_mismatch'] == 0
    assert summary['num_value_mismatch'] == 0 and summary['num_equal'] == len(model.state_dict())

    # 3. What was copied is the file's tensor; Swin's merged channels are permuted, not copied
    #    (every 7th key and every PatchMerging key).
    model_state = model.state_dict()
    for index, (target, source) in enumerate(report.source_of.items()):
        merged = target.startswith('backbone.stages.') and '.downsample.' in target
        if not source.startswith('<') and (merged or index % 7 == 0):
            assert torch.equal(model_state[target], state[source]) != merged, (target, source)

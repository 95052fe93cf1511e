"""LoadFromCheckHook compares the model with the checkpoint mmengine loaded, not a second read.

mmengine 0.10.7's ``Runner.load_checkpoint`` calls ``after_load_checkpoint(runner, checkpoint)``
with the loaded dict before copying it into the model; ``before_train`` follows. The hook keeps
that dict (a reference) and compares with it: the file may be gone by then. NaN weights are
named as such, not as a value mismatch; a test or validation run frees what it kept.
"""
import json
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MMLogger
from torch import nn

from direct_pretrain.engine.hooks import LoadFromCheckHook


def _runner(model, work_dir, load_from, resume=False):
    return SimpleNamespace(_load_from=load_from, _resume=resume, model=model, rank=0, work_dir=str(work_dir),
                           logger=MMLogger.get_instance('test_load_from_check_hook'))


def _load_like_the_runner(hook, runner, path):
    """What Runner.load_checkpoint does: load, call the hook, copy into the model."""
    checkpoint = torch.load(path, weights_only=True)
    hook.after_load_checkpoint(runner, checkpoint)
    runner.model.load_state_dict(checkpoint['state_dict'], strict=False)


def test_compares_with_the_checkpoint_the_runner_loaded(tmp_path):
    source = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    path = tmp_path / 'pretrain.pth'
    torch.save({'state_dict': {'module.' + k: v for k, v in source.state_dict().items()}}, path)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    hook, runner = LoadFromCheckHook(), _runner(model, tmp_path, str(path))
    checkpoint = torch.load(path, weights_only=True)
    hook.after_load_checkpoint(runner, checkpoint)
    model.load_state_dict({k[len('module.'):]: v for k, v in checkpoint['state_dict'].items()})
    path.unlink()  # a second read would fail: the hook must not need the file any more
    hook.before_train(runner)
    summary = json.loads((tmp_path / 'load_from_report.json').read_text())['summary']
    assert summary['num_equal'] == len(model.state_dict()) == 7 and summary['num_missing'] == 0


def test_nan_weights_are_named_as_non_finite(tmp_path):
    source = nn.Linear(4, 3)
    with torch.no_grad():
        source.weight[0, 0] = float('nan')
    path = tmp_path / 'diverged.pth'
    torch.save({'state_dict': source.state_dict()}, path)
    model = nn.Linear(4, 3)
    hook, runner = LoadFromCheckHook(), _runner(model, tmp_path, str(path))
    _load_like_the_runner(hook, runner, path)
    with pytest.raises(RuntimeError, match=r"holds non-finite weights \(NaN/inf\) in 1 tensors \(\['weight'\]\)"):
        hook.before_train(runner)
    report = json.loads((tmp_path / 'load_from_report.json').read_text())
    assert report['non_finite'] == ['weight'] and report['value_mismatch'] == [] and report['equal'] == ['bias']


def test_test_runs_and_resumes_keep_nothing(tmp_path):
    model = nn.Linear(4, 3)
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    hook = LoadFromCheckHook()
    _load_like_the_runner(hook, _runner(model, tmp_path, str(path), resume=True), path)
    assert hook._loaded_state is None  # resumed weights are the run's own
    runner = _runner(model, tmp_path, str(path))
    _load_like_the_runner(hook, runner, path)
    assert hook._loaded_state is not None
    hook.before_test(runner)  # dp-test with the fine-tune config: the tensors are not held through the test
    assert hook._loaded_state is None

"""Verify that ``load_from`` really moved the whole detector.

mmengine loads ``load_from`` non-strictly: missing, unexpected and shape-mismatched
keys are only warnings and the affected tensors silently keep their random init. For a
fine-tune whose whole point is to start from the pretrained detector, that is the worst
failure mode, so this hook compares the model right after loading with the checkpoint,
writes a JSON report to the work dir, and (when ``strict``) stops the run.
"""
import json
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import _load_checkpoint

from mmdet.registry import HOOKS

__all__ = ['LoadFromCheckHook', 'compare_state_dicts']


def compare_state_dicts(model_state: Dict[str, torch.Tensor], ckpt_state: Dict[str, torch.Tensor],
                        allowed_missing: Sequence[str] = ()) -> Dict[str, List[str]]:
    """Key-by-key comparison of a model's state with a checkpoint's.

    Returns:
        dict: ``missing`` (in the model, not the checkpoint, minus ``allowed_missing``
        patterns), ``unexpected`` (in the checkpoint only), ``shape_mismatch``,
        ``value_mismatch`` (same shape, different values) and ``equal`` key lists.
    """
    patterns = [re.compile(p) for p in allowed_missing]
    report: Dict[str, List[str]] = dict(missing=[], allowed_missing=[], unexpected=[], shape_mismatch=[],
                                        value_mismatch=[], equal=[])
    for key, value in model_state.items():
        if key not in ckpt_state:
            bucket = 'allowed_missing' if any(p.search(key) for p in patterns) else 'missing'
            report[bucket].append(key)
            continue
        source = ckpt_state[key]
        if tuple(source.shape) != tuple(value.shape):
            report['shape_mismatch'].append(f'{key}: checkpoint {tuple(source.shape)} vs model {tuple(value.shape)}')
        elif torch.equal(source.to(value.device, value.dtype), value):
            report['equal'].append(key)
        else:
            report['value_mismatch'].append(key)
    report['unexpected'] = sorted(set(ckpt_state) - set(model_state))
    return report


@HOOKS.register_module()
class LoadFromCheckHook(Hook):
    """Check, before the first iteration, that ``load_from`` filled every tensor.

    Args:
        strict (bool): Raise when any key is missing, unexpected or mismatched.
            Defaults to True.
        allowed_missing (Sequence[str]): Regex patterns of model keys that may be absent
            from the checkpoint (e.g. a head that is new in the fine-tune). Defaults to ().
        report_file (str): JSON report written to the work dir. Defaults to
            'load_from_report.json'.
    """
    priority = 'VERY_HIGH'

    def __init__(self, strict: bool = True, allowed_missing: Sequence[str] = (),
                 report_file: str = 'load_from_report.json') -> None:
        self.strict = strict
        self.allowed_missing = tuple(allowed_missing)
        self.report_file = report_file

    def before_train(self, runner) -> None:
        load_from: Optional[str] = runner._load_from
        if not load_from or runner._resume:
            return  # nothing loaded, or the weights come from the resumed run
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        checkpoint = _load_checkpoint(load_from, map_location='cpu', logger=runner.logger)
        ckpt_state = checkpoint.get('state_dict', checkpoint)
        ckpt_state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in ckpt_state.items()}
        report = compare_state_dicts(model.state_dict(), ckpt_state, self.allowed_missing)
        problems = {k: report[k] for k in ('missing', 'unexpected', 'shape_mismatch', 'value_mismatch')}
        summary = dict(load_from=load_from, num_model_keys=len(model.state_dict()), num_checkpoint_keys=len(ckpt_state),
                       num_equal=len(report['equal']), **{f'num_{k}': len(v) for k, v in problems.items()},
                       num_allowed_missing=len(report['allowed_missing']))
        runner.logger.info('load_from check: ' + ', '.join(f'{k}={v}' for k, v in summary.items()))
        if runner.rank == 0:
            with open(osp.join(runner.work_dir, self.report_file), 'w') as f:
                json.dump(dict(summary=summary, **report), f, indent=1)
        bad = {k: v for k, v in problems.items() if v}
        if bad and self.strict:
            details = '; '.join(f'{k}: {v[:5]}{" ..." if len(v) > 5 else ""}' for k, v in bad.items())
            raise RuntimeError(
                f'load_from={load_from} did not load the whole detector ({details}). Check that the '
                'checkpoint comes from the matching pretrain config, list keys that are meant to be new '
                'in LoadFromCheckHook(allowed_missing=...), or set strict=False.')

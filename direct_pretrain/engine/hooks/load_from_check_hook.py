"""Verify that ``load_from`` really moved the whole detector.

mmengine loads ``load_from`` non-strictly: missing, unexpected and shape-mismatched
keys are only warnings and the affected tensors silently keep their random init. For a
fine-tune whose whole point is to start from the pretrained detector, that is the worst
failure mode, so this hook compares the model right after loading with the checkpoint,
writes a JSON report to the work dir, and (when ``strict``) stops the run.

Why it keeps the checkpoint mmengine hands over: ``Runner.load_checkpoint`` calls
``after_load_checkpoint(runner, checkpoint)`` with the loaded (for ``detectron://`` and
``direct-release://``: converted) dict just before copying it into the model, and
``before_train`` follows; comparing with that dict avoids reading and converting the file a
second time. Names and shapes are compared by :mod:`direct_pretrain.checkpoint.model_fit`,
the same comparison the train / test / infer tools run before the Runner exists.
"""
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS
from ...checkpoint.model_fit import checkpoint_state_dict, compare_shapes, load_checkpoint_state, non_finite_tensors

__all__ = ['LoadFromCheckHook', 'compare_state_dicts']


def compare_state_dicts(model_state: Dict[str, torch.Tensor], ckpt_state: Dict[str, torch.Tensor],
                        allowed_missing: Sequence[str] = ()) -> Dict[str, List[str]]:
    """Key-by-key comparison of a model's state with a checkpoint's.

    Returns:
        dict: ``missing`` (in the model, not the checkpoint, minus ``allowed_missing``
        patterns), ``allowed_missing``, ``unexpected`` (in the checkpoint only),
        ``shape_mismatch``, ``non_finite`` (the checkpoint's tensor holds NaN/inf),
        ``value_mismatch`` (same shape, different finite values) and ``equal`` key lists.
    """
    fit = compare_shapes({k: tuple(v.shape) for k, v in model_state.items()},
                         {k: tuple(v.shape) for k, v in ckpt_state.items()}, allowed_missing)
    report: Dict[str, List[str]] = dict(missing=fit.missing, allowed_missing=fit.allowed_missing,
                                        unexpected=fit.unexpected,
                                        shape_mismatch=[str(m) for m in fit.shape_mismatch], non_finite=[],
                                        value_mismatch=[], equal=[])
    non_finite = set(non_finite_tensors({key: ckpt_state[key] for key in fit.matched}))
    for key in fit.matched:
        source, value = ckpt_state[key], model_state[key]
        if key in non_finite:
            report['non_finite'].append(key)
        elif torch.equal(source.to(value.device, value.dtype), value):
            report['equal'].append(key)
        else:
            report['value_mismatch'].append(key)
    return report


def _shown(keys: List[str]) -> str:
    return f'{keys[:5]}{" ..." if len(keys) > 5 else ""}'


@HOOKS.register_module()
class LoadFromCheckHook(Hook):
    """Check, before the first iteration, that ``load_from`` filled every tensor.

    Args:
        strict (bool): Raise when any key is missing, unexpected or mismatched, or a
            loaded tensor is not finite. Defaults to True.
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
        self._loaded_state: Optional[Dict[str, Any]] = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the state dict mmengine loaded (a reference, not a copy) until ``before_train``."""
        if runner._load_from and not runner._resume:
            self._loaded_state = checkpoint_state_dict(checkpoint)

    def before_val(self, runner) -> None:
        self._loaded_state = None  # a validation or test run: nothing to compare, free the tensors

    before_test = before_val

    def before_train(self, runner) -> None:
        ckpt_state, self._loaded_state = self._loaded_state, None
        load_from: Optional[str] = runner._load_from
        if not load_from or runner._resume:
            return  # nothing loaded, or the weights come from the resumed run
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if ckpt_state is None:  # loaded outside Runner.load_checkpoint (mmengine's load_checkpoint): read it
            ckpt_state = load_checkpoint_state(load_from, 'load_from')
        ckpt_state = {k: v for k, v in ckpt_state.items() if isinstance(v, torch.Tensor)}
        model_state = model.state_dict()
        report = compare_state_dicts(model_state, ckpt_state, self.allowed_missing)
        problems = {k: report[k] for k in ('missing', 'unexpected', 'shape_mismatch', 'non_finite', 'value_mismatch')}
        summary = dict(load_from=load_from, num_model_keys=len(model_state), num_checkpoint_keys=len(ckpt_state),
                       num_equal=len(report['equal']), **{f'num_{k}': len(v) for k, v in problems.items()},
                       num_allowed_missing=len(report['allowed_missing']))
        runner.logger.info('load_from check: ' + ', '.join(f'{k}={v}' for k, v in summary.items()))
        if runner.rank == 0:
            with open(osp.join(runner.work_dir, self.report_file), 'w') as f:
                json.dump(dict(summary=summary, **report), f, indent=1)
        if not self.strict:
            return
        if report['non_finite']:
            raise RuntimeError(
                f'load_from={load_from} holds non-finite weights (NaN/inf) in {len(report["non_finite"])} tensors '
                f'({_shown(report["non_finite"])}): the pretrain run that wrote it diverged. Point load_from at an '
                'earlier checkpoint of that run (its work dir keeps the last ones), or re-run it with a lower LR or '
                'another seed.')
        bad = {k: v for k, v in problems.items() if v}
        if bad:
            details = '; '.join(f'{k}: {_shown(v)}' for k, v in bad.items())
            raise RuntimeError(
                f'load_from={load_from} did not load the whole detector ({details}). Check that the '
                'checkpoint comes from the matching pretrain config, list keys that are meant to be new '
                'in LoadFromCheckHook(allowed_missing=...), or set strict=False.')

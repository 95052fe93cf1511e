"""Stage progress and the job ETA of the chain and the mini reproduction."""
import os.path as osp

import pytest

from dp_test_utils import REPO_ROOT, TOY_FINETUNE, TOY_PRETRAIN
from direct_pretrain.chain.progress import StageProgress, estimate_train_cost


def test_eta_scales_the_measured_seconds_per_cost_unit():
    lines = []
    progress = StageProgress([('pre', 1.0), ('ft', 3.0), ('test', None)], 'job', log=lines.append)
    assert progress.eta() is None
    progress.start('pre')
    assert lines[-1].startswith('[1/3] pre: starting (job elapsed') and 'ETA unknown' in lines[-1]
    progress.finish('pre', 10.0)
    assert progress.eta() == pytest.approx(30.0)
    assert lines[-1].startswith('[1/3] pre: ran in 10.0s') and 'ETA 30.0s + test' in lines[-1]
    progress.finish('ft', 0.0, 'skipped')  # a skipped stage costs nothing and does not skew the rate
    assert progress.eta() == 0.0 and 'training done, left: test' in lines[-1]
    with pytest.raises(KeyError, match="'nope' is not in the plan"):
        progress.start('nope')


def test_cost_estimate_of_the_toy_stages_and_arms():
    pre, ft = estimate_train_cost(TOY_PRETRAIN), estimate_train_cost(TOY_FINETUNE)
    assert pre == pytest.approx(4 * 2 * 192)  # epochs x RepeatDataset times x sqrt(crop pixels)
    assert ft == pytest.approx(2 * (480 * 320)**0.5)  # epochs x sqrt(resize scale pixels)
    scratch = [estimate_train_cost(osp.join(REPO_ROOT, 'configs/toy', f'mask-rcnn_r18_fpn_1xb2-scratch-{e}_toy.py'))
               for e in ('2e', '5e')]
    assert scratch == [ft, 2.5 * ft]

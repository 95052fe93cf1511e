"""End to end with the real tools: pretrain -> finetune (load_from) -> test.

The shared toy chain (``toy_chain``: ``dp-chain`` on tiny configs, built once per session) is
what the assertions read; a re-run works on a copy of it. Tool runs are forked from the
pre-imported tool server (``forked_cli.py``).
"""
import glob
import json
import os.path as osp
import pickle

import torch

from dp_test_utils import TOOLS, has_row
from forked_cli import run_tool


def test_finetune_loaded_the_whole_pretrained_detector(toy_chain):
    with open(osp.join(toy_chain['ft_dir'], 'load_from_report.json')) as f:
        report = json.load(f)
    summary = report['summary']
    assert summary['load_from'] == toy_chain['pre_ckpt']
    for key in ('num_missing', 'num_unexpected', 'num_shape_mismatch', 'num_value_mismatch', 'num_allowed_missing'):
        assert summary[key] == 0, (key, report)
    assert summary['num_equal'] == summary['num_model_keys'] == summary['num_checkpoint_keys'] > 100


def test_frozen_parts_still_equal_the_pretrain_checkpoint(toy_chain):
    """Independent of the hook: what the finetune froze (stem, stage 1, all backbone BN
    statistics and affine) must be bit-identical to the pretrain weights after training."""
    pre = torch.load(toy_chain['pre_ckpt'], map_location='cpu', weights_only=False)['state_dict']
    ft = torch.load(toy_chain['ft_ckpt'], map_location='cpu', weights_only=False)['state_dict']
    assert set(pre) == set(ft)
    frozen = [k for k in pre if k.startswith(('backbone.conv1.', 'backbone.bn1.', 'backbone.layer1.'))
              or (k.startswith('backbone.') and '.bn' in k or '.downsample.1.' in k)]
    assert len(frozen) > 50
    for key in frozen:
        assert torch.equal(pre[key], ft[key]), key
    # ... while the trained heads moved away from the pretrain values.
    assert not torch.equal(pre['roi_head.bbox_head.fc_cls.weight'], ft['roi_head.bbox_head.fc_cls.weight'])


def test_test_stage_reports_bbox_and_segm_map(toy_chain):
    with open(toy_chain['metrics_file']) as f:
        metrics = json.load(f)
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert isinstance(metrics[key], float) and 0.0 <= metrics[key] <= 1.0, key
    # the chain ends with the results table
    assert has_row(toy_chain['stdout'], 'pretrain', 'ran') and has_row(toy_chain['stdout'], 'test', 'ran')
    assert 'bbox_mAP | bbox_mAP_50' in toy_chain['stdout']


def test_chain_terminal_shows_a_bar_per_stage_and_the_logs_keep_the_rest(toy_chain):
    """The chain's own lines, one progress bar per stage and the results: no config dumps,
    hook tables or COCO tables (those go to each stage's stage.log)."""
    lines = (toy_chain['stdout'] + toy_chain['stderr']).splitlines()
    assert len(lines) < 60, '\n'.join(lines)
    bars = [line for line in lines if '━' in line]
    assert [line.split()[0] for line in bars] == ['pretrain', 'finetune', 'test'], bars
    assert all('done' in line for line in bars) and 'loss' in bars[0]
    assert not any('paramwise_options' in line or 'Average Precision' in line for line in lines)
    for work_dir, marker in ((toy_chain['pre_dir'], 'Epoch(train)'), (toy_chain['ft_dir'], 'Average Precision')):
        with open(osp.join(work_dir, 'stage.log')) as f:
            assert marker in f.read(), work_dir


def test_test_tool_dumps_predictions_and_drawings(toy_chain, tmp_path):
    out_dir = tmp_path / 'test_tool'
    run_tool(osp.join(TOOLS, 'test.py'), toy_chain['ft_cfg'], toy_chain['ft_ckpt'], '--work-dir', out_dir, '--eval',
             'bbox', '--out', out_dir / 'preds.pkl', '--show-dir', 'drawn', cwd=tmp_path)
    with open(out_dir / 'preds.pkl', 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 4 and 'pred_instances' in preds[0]  # the tiny set's 4 val images
    assert len(glob.glob(str(out_dir / '*' / 'drawn' / '*.jpg'))) == 4


def test_chain_rerun_skips_finished_stages_and_resumes_an_interrupted_one(toy_chain_copy):
    chain = toy_chain_copy
    args = [chain['pre_cfg'], chain['ft_cfg'], '--work-root', chain['root'], '--no-report']
    rerun = run_tool('chain', *args, cwd=chain['tmp'], fast_stages=True)
    assert has_row(rerun.stdout, 'pretrain', 'skipped') and has_row(rerun.stdout, 'finetune', 'skipped')
    assert has_row(rerun.stdout, 'test', 'skipped')
    # The finetune as if stopped after its first epoch of two: epoch_1.pth and last_checkpoint, no epoch_2.pth.
    with open(chain['ft_cfg'], 'a') as f:
        f.write('train_cfg = dict(max_epochs=2)\n')
    resumed = run_tool('chain', *args, cwd=chain['tmp'], fast_stages=True)
    assert has_row(resumed.stdout, 'pretrain', 'skipped') and has_row(resumed.stdout, 'finetune', 'resumed')
    assert has_row(resumed.stdout, 'test', 'ran') and osp.isfile(osp.join(chain['ft_dir'], 'epoch_2.pth'))

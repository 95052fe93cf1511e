"""End to end with the real tools: pretrain -> finetune (load_from) -> test.

The runs are real ``tools/train.py`` / ``tools/test.py`` child processes on a tiny toy
set; module-scoped fixtures share them between the assertions.
"""
import glob
import json
import os
import os.path as osp
import subprocess

import pytest
import torch

from dp_test_utils import PYTHON, TOOLS, has_row, python_env, write_tiny_stage_configs


def run_tool(*args: str, cwd: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([PYTHON, *args], cwd=cwd, env=python_env(), capture_output=True, text=True,
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


@pytest.fixture(scope='module')
def chain(tmp_path_factory, tiny_coco_root):
    """Runs the main job's chain (tools/run_chain.py) once on tiny configs."""
    tmp = str(tmp_path_factory.mktemp('chain'))
    pre_cfg, ft_cfg = write_tiny_stage_configs(osp.join(tmp, 'configs'), tiny_coco_root, finetune_epochs=2)
    root = osp.join(tmp, 'work')
    proc = run_tool(osp.join(TOOLS, 'run_chain.py'), pre_cfg, ft_cfg, '--work-root', root, cwd=tmp)
    pre_dir, ft_dir = osp.join(root, 'tiny_pretrain'), osp.join(root, 'tiny_finetune')
    return dict(tmp=tmp, root=root, pre_cfg=pre_cfg, ft_cfg=ft_cfg, pre_dir=pre_dir, ft_dir=ft_dir,
                pre_ckpt=osp.join(pre_dir, 'epoch_1.pth'), ft_ckpt=osp.join(ft_dir, 'epoch_2.pth'),
                metrics_file=osp.join(ft_dir, 'test_metrics.json'), stdout=proc.stdout, stderr=proc.stderr)


def test_finetune_loaded_the_whole_pretrained_detector(chain):
    with open(osp.join(chain['ft_dir'], 'load_from_report.json')) as f:
        report = json.load(f)
    summary = report['summary']
    assert summary['load_from'] == chain['pre_ckpt']
    for key in ('num_missing', 'num_unexpected', 'num_shape_mismatch', 'num_value_mismatch', 'num_allowed_missing'):
        assert summary[key] == 0, (key, report)
    assert summary['num_equal'] == summary['num_model_keys'] == summary['num_checkpoint_keys'] > 100


def test_frozen_parts_still_equal_the_pretrain_checkpoint(chain):
    """Independent of the hook: what the finetune froze (stem, stage 1, all backbone BN
    statistics and affine) must be bit-identical to the pretrain weights after training."""
    pre = torch.load(chain['pre_ckpt'], map_location='cpu', weights_only=False)['state_dict']
    ft = torch.load(chain['ft_ckpt'], map_location='cpu', weights_only=False)['state_dict']
    assert set(pre) == set(ft)
    frozen = [k for k in pre if k.startswith(('backbone.conv1.', 'backbone.bn1.', 'backbone.layer1.'))
              or (k.startswith('backbone.') and '.bn' in k or '.downsample.1.' in k)]
    assert len(frozen) > 50
    for key in frozen:
        assert torch.equal(pre[key], ft[key]), key
    # ... while the trained heads moved away from the pretrain values.
    assert not torch.equal(pre['roi_head.bbox_head.fc_cls.weight'], ft['roi_head.bbox_head.fc_cls.weight'])


def test_test_stage_reports_bbox_and_segm_map(chain):
    with open(chain['metrics_file']) as f:
        metrics = json.load(f)
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert isinstance(metrics[key], float) and 0.0 <= metrics[key] <= 1.0, key
    # the chain ends with the results table
    assert has_row(chain['stdout'], 'pretrain', 'ran') and has_row(chain['stdout'], 'test', 'ran')
    assert 'bbox_mAP | bbox_mAP_50' in chain['stdout']


def test_chain_terminal_shows_a_bar_per_stage_and_the_logs_keep_the_rest(chain):
    """The chain's own lines, one progress bar per stage and the results: no config dumps,
    hook tables or COCO tables (those go to each stage's stage.log)."""
    lines = (chain['stdout'] + chain['stderr']).splitlines()
    assert len(lines) < 60, '\n'.join(lines)
    bars = [line for line in lines if '━' in line]
    assert [line.split()[0] for line in bars] == ['pretrain', 'finetune', 'test'], bars
    assert all('done' in line for line in bars) and 'loss' in bars[0]
    assert not any('paramwise_options' in line or 'Average Precision' in line for line in lines)
    for work_dir, marker in ((chain['pre_dir'], 'Epoch(train)'), (chain['ft_dir'], 'Average Precision')):
        with open(osp.join(work_dir, 'stage.log')) as f:
            assert marker in f.read(), work_dir


def test_test_tool_dumps_predictions_and_drawings(chain):
    out_dir = osp.join(chain['tmp'], 'test_tool')
    run_tool(osp.join(TOOLS, 'test.py'), chain['ft_cfg'], chain['ft_ckpt'], '--work-dir', out_dir, '--eval', 'bbox',
             '--out', osp.join(out_dir, 'preds.pkl'), '--show-dir', 'drawn', cwd=chain['tmp'])
    import pickle
    with open(osp.join(out_dir, 'preds.pkl'), 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 4 and 'pred_instances' in preds[0]
    assert len(glob.glob(osp.join(out_dir, '*', 'drawn', '*.jpg'))) == 4


def test_chain_rerun_skips_finished_stages_and_resumes_an_interrupted_one(chain):
    ft_final = chain['ft_ckpt']
    rerun = run_tool(osp.join(TOOLS, 'run_chain.py'), chain['pre_cfg'], chain['ft_cfg'], '--work-root', chain['root'],
                     cwd=chain['tmp'])
    assert has_row(rerun.stdout, 'pretrain', 'skipped') and has_row(rerun.stdout, 'finetune', 'skipped')
    assert has_row(rerun.stdout, 'test', 'skipped')
    # interrupt the finetune after its first epoch: drop the final checkpoint
    first = osp.join(chain['ft_dir'], 'epoch_1.pth')
    os.remove(ft_final)
    with open(osp.join(chain['ft_dir'], 'last_checkpoint'), 'w') as f:
        f.write(first)
    resumed = run_tool(osp.join(TOOLS, 'run_chain.py'), chain['pre_cfg'], chain['ft_cfg'], '--work-root',
                       chain['root'], cwd=chain['tmp'])
    assert has_row(resumed.stdout, 'pretrain', 'skipped') and has_row(resumed.stdout, 'finetune', 'resumed')
    assert has_row(resumed.stdout, 'test', 'ran') and osp.isfile(ft_final)


def test_mmdet_own_train_tool_uses_the_plugin(chain, tmp_path, repo_root):
    """A config outside this repo imports the plugin via custom_imports and trains with the
    train.py shipped in the mmdet wheel; load_from of an mmengine checkpoint works there too."""
    import mmdet
    stock_train = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    cfg = tmp_path / 'plugin_cfg.py'
    cfg.write_text(f"_base_ = {chain['ft_cfg']!r}\n"
                   "custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)\n"
                   f"load_from = {chain['pre_ckpt']!r}\n"
                   "custom_hooks = [dict(type='LoadFromCheckHook', strict=True)]\n"
                   "train_cfg = dict(max_epochs=1)\n")
    work_dir = tmp_path / 'work'
    run_tool(stock_train, str(cfg), '--work-dir', str(work_dir), cwd=str(tmp_path))
    with open(work_dir / 'load_from_report.json') as f:
        assert json.load(f)['summary']['num_missing'] == 0
    assert glob.glob(str(work_dir / 'epoch_1.pth'))

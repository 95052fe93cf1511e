"""``tools/gpu_check.py``: the dry run on CPU, its JSON, the planned training, bad input.

The GPU figures themselves need a GPU; here the same code runs without CUDA calls: models
built from the real configs take a real train step, the CPU-side correctness checks run,
and the training commands are checked against the real train / test argument parsers.
"""
import json
import math
import os
import os.path as osp

import pytest
from dp_test_utils import REPO_ROOT, TOOLS
from forked_cli import run_tool
from mmengine.config import Config

from direct_pretrain.analysis_tools import gpu_check
from direct_pretrain.analysis_tools.gpu_check import BENCHMARKS, GpuCheckOptions, summarize_speedups, training_plan
from direct_pretrain.analysis_tools.train_throughput import PRECISIONS, optim_wrapper_cfg
from direct_pretrain.chain import StageResult
from direct_pretrain.chain.terminal import StageFailed
from direct_pretrain.config import load_config
from direct_pretrain.errors import GpuCheckInputError

TOOL = osp.join(TOOLS, 'gpu_check.py')


def _run(args, cwd):
    return run_tool(TOOL, *args, cwd=cwd, check=False)


@pytest.fixture(scope='module')
def dry_summary(tmp_path_factory):
    """One dry run of the CLI on a single benchmark (keeps the test short), as a user runs it."""
    tmp = tmp_path_factory.mktemp('gpu_check')
    out = tmp / 'summary.json'
    work = tmp / 'work'
    proc = _run(['--dry-run', '--benchmarks', 'faster-rcnn-pretrain', '--out', str(out), '--work-dir', str(work)],
                cwd=str(tmp))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == summary
    return summary, proc.stderr, work


@pytest.mark.slow  # runs the tool
def test_dry_run_environment_and_schema(dry_summary):
    summary, stderr, _ = dry_summary
    assert summary['dry_run'] is True
    assert set(summary) >= {'schema_version', 'environment', 'correctness', 'throughput', 'speedup', 'training',
                            'failures'}
    env = summary['environment']
    import mmcv
    import torch

    import mmdet
    assert (env['torch'], env['mmcv'], env['mmdet']) == (torch.__version__, mmcv.__version__, mmdet.__version__)
    assert env['cuda_available'] is torch.cuda.is_available()
    assert isinstance(env['mmcv_cuda_ops'], bool)
    assert summary['failures'] == 0
    assert 'faster-rcnn-pretrain' in stderr  # the plain-text table


@pytest.mark.slow  # runs the tool
def test_dry_run_correctness_checks(dry_summary):
    entries = {e['name']: e for e in dry_summary[0]['correctness']}
    for name in ('roi_align/mmcv-cuda-vs-mmcv-cpu', 'nms/mmcv-cuda-vs-mmcv-cpu', 'sync_bn/torch-fused-cpu-vs-batchnorm2d'):
        assert entries[name]['skipped'] and entries[name]['passed'] is None
    # run on CPU: the fallback against mmcv, SyncBN's layer and portable function against BN
    for name in ('roi_align/torchvision-cpu-vs-mmcv-cpu', 'nms/torchvision-cpu-vs-mmcv-cpu',
                 'sync_bn/layer-cpu-vs-batchnorm2d', 'sync_bn/portable-cpu-vs-batchnorm2d'):
        entry = entries[name]
        assert entry['passed'] is True, entry
        assert entry['max_abs_diff'] <= entry['tolerance']
    assert entries['roi_align/torchvision-cpu-vs-mmcv-cpu']['cases'] >= 32


@pytest.mark.slow  # runs the tool
def test_dry_run_steps_the_real_model(dry_summary):
    entries = dry_summary[0]['throughput']
    spec = BENCHMARKS['faster-rcnn-pretrain']
    assert len(entries) == len(spec.precisions) * len(spec.channels_last)
    stepped = [e for e in entries if e['final_loss'] is not None]
    assert len(stepped) == 1
    step = stepped[0]
    assert step['device'] == 'cpu' and step['precision'] == 'fp32' and step['batch_size'] == 1
    assert math.isfinite(step['final_loss']) and step['loss_finite'] is True
    assert max(step['image_size']) == GpuCheckOptions().dry_size
    # built as a single-process Runner builds it: the config's SyncBNAnyBackend stays (it is BN here)
    assert step['norm_layers'].get('SyncBNAnyBackend', 0) > 0
    for entry in entries:  # no figures in a dry run
        assert entry['images_per_s'] is None and entry['peak_memory_mib'] is None and entry['fits_11gb'] is None
        assert entry['error'] is None
        assert entry is step or entry['skipped']
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', spec.config))
    planned = [e for e in entries if e is not step]
    assert {e['batch_size'] for e in planned} == {cfg.train_dataloader.batch_size}
    assert dry_summary[0]['speedup']['pretrain_amp_best'] is None


@pytest.mark.slow  # runs the tool
def test_dry_run_plans_training_without_running_it(dry_summary):
    summary, _, work = dry_summary
    training = summary['training']
    assert training['results'] == [] and 'dry run' in training['skipped']
    modules = [argv[2] for argv in training['planned']]
    assert modules == ['direct_pretrain.cli.train', 'direct_pretrain.cli.train', 'direct_pretrain.cli.test']
    assert not work.exists()


def _apply(argv, parse_args):
    """The config the planned command's tool runs: its own parser, then the package's loading
    with ``--cfg-options`` and ``--data-root``."""
    args = parse_args(argv[3:])
    return args, load_config(args.config, args.work_dir, args.cfg_options, data_root=args.data_root)


def test_training_plan_parses_and_points_at_its_data(tmp_path):
    from direct_pretrain.cli.test import parse_args as parse_test
    from direct_pretrain.cli.train import parse_args as parse_train
    from direct_pretrain.config.dataset_cfg import iter_leaf_datasets
    options = GpuCheckOptions(work_dir=str(tmp_path / 'w'), pretrain_images=16, finetune_images=6)
    plan = training_plan(options)
    pretrain, finetune, test = [c['argv'] for c in plan['commands']]
    root = plan['data_root']

    args, cfg = _apply(pretrain, parse_train)
    assert args.data_root == root  # the dataset folder goes by --data-root, as dp-chain passes it
    assert cfg.train_cfg.max_epochs == 1
    (key, leaf), = list(iter_leaf_datasets(cfg, ('train_dataloader', )))
    assert leaf.data_root == root and leaf.indices == 16
    assert cfg.train_dataloader.dataset.get('times', 1) == 1  # the toy pretrain's RepeatDataset
    pretrain_ckpt = osp.join(args.work_dir, 'epoch_1.pth')

    args, cfg = _apply(finetune, parse_train)
    assert args.data_root == root and cfg.load_from == pretrain_ckpt
    (key, leaf), = list(iter_leaf_datasets(cfg, ('train_dataloader', )))
    assert leaf.data_root == root and leaf.indices == 6
    finetune_ckpt = osp.join(args.work_dir, 'epoch_1.pth')

    args, cfg = _apply(test, parse_test)
    assert args.data_root == root and args.checkpoint == finetune_ckpt and args.eval == ['bbox', 'segm']
    (key, leaf), = list(iter_leaf_datasets(cfg, ('test_dataloader', )))
    assert leaf.data_root == root and 'indices' not in leaf
    assert cfg.test_evaluator.ann_file.startswith(root)
    assert not osp.exists(str(tmp_path / 'w'))  # planning writes nothing


def test_training_runs_the_plan_through_the_chain_stage_runners(tmp_path, monkeypatch):
    """What the chain's runners report becomes the summary's entries: a stage the chain skips
    (its output exists), then a failing one (exit code and log tail), after which the test is
    not started. The runners are replaced; what they run is tested with the chain."""
    plan = training_plan(GpuCheckOptions(work_dir=str(tmp_path / 'w'), pretrain_images=4, finetune_images=2))
    pretrain, finetune, _ = plan['commands']
    calls = []

    def run_train_stage(name, config, cfg, work_dir, extra, progress):
        calls.append((name, config, work_dir, list(extra)))
        if name == 'pretrain':
            return StageResult(name, 'skipped', 0.0, pretrain['output'])
        try:
            raise StageFailed(name, 3, osp.join(work_dir, 'stage.log'), ['Traceback ...\n', 'boom\n'])
        except StageFailed as error:
            raise RuntimeError(str(error)) from error

    monkeypatch.setattr(gpu_check, 'run_train_stage', run_train_stage)
    monkeypatch.setattr(gpu_check, 'run_test_stage', lambda *args, **kwargs: pytest.fail('test stage started'))
    monkeypatch.setattr(gpu_check, 'toy_coco_is_complete', lambda root: root == plan['data_root'])
    results = gpu_check.run_training(plan)

    assert [c[:3] for c in calls] == [(s['stage'], s['config'], s['work_dir']) for s in (pretrain, finetune)]
    assert all(c[3][:2] == ['--data-root', plan['data_root']] for c in calls)
    skipped, failed, test = results
    assert skipped['skipped'].startswith(pretrain['output']) and skipped['error'] is None
    assert failed['returncode'] == 3 and 'boom' in failed['error'] and failed['skipped'] is None
    assert failed['log'] == osp.join(finetune['work_dir'], 'stage.log')
    assert test['skipped'] == 'an earlier stage failed' and test['returncode'] is None
    assert gpu_check.count_failures(dict(training=dict(results=results))) == 1


def test_optim_wrapper_precisions_keep_the_config_settings():
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', BENCHMARKS['mask-rcnn-swin-t-pretrain'].config))
    lr = cfg.optim_wrapper.optimizer.lr
    fp32 = optim_wrapper_cfg(cfg.optim_wrapper, 'fp32', lr_scale=0.5)
    assert fp32['type'] == 'OptimWrapper' and 'loss_scale' not in fp32 and 'dtype' not in fp32
    assert fp32['optimizer']['lr'] == pytest.approx(lr * 0.5)
    assert fp32['paramwise_cfg'] == cfg.optim_wrapper.paramwise_cfg
    for precision, dtype in PRECISIONS.items():
        if dtype:
            amp = optim_wrapper_cfg(cfg.optim_wrapper, precision)
            assert amp['type'] == 'AmpOptimWrapper' and amp['dtype'] == dtype and amp['loss_scale']
    assert cfg.optim_wrapper.optimizer.lr == lr  # the config itself is untouched
    with pytest.raises(ValueError, match='fp8'):
        optim_wrapper_cfg(cfg.optim_wrapper, 'fp8')


def test_speedups_and_claims_from_measured_entries():
    def entry(precision, channels_last, images_per_s, reserved=None):
        return dict(name='faster-rcnn-pretrain', config='c', image_size=[448, 448], batch_size=8,
                    precision=precision, channels_last=channels_last, device='cuda', warmup_steps=1, timed_steps=1,
                    images_per_s=images_per_s, fits_11gb=None if reserved is None else reserved <= 11178)
    summary = summarize_speedups([entry('fp32', False, 40.0, 9000), entry('bf16', False, 70.0),
                                  entry('fp16', True, 80.0), entry('fp32', True, None)])
    table = summary['speedup_over_fp32']['faster-rcnn-pretrain']
    assert table['bf16'] == pytest.approx(70 / 40) and table['fp16+channels_last'] == pytest.approx(2.0)
    assert table['fp32+channels_last'] is None
    assert summary['pretrain_amp_best'] == pytest.approx(2.0) and summary['pretrain_amp_goal_met'] is True
    assert summary['pretrain_fp32_fits_11gb'] is True


def test_options_are_validated():
    for bad in (dict(benchmarks=('nope', )), dict(precisions=('fp8', )), dict(steps=0), dict(dry_size=100)):
        with pytest.raises(GpuCheckInputError):
            GpuCheckOptions(**bad).validate()


@pytest.mark.slow  # runs the tool
def test_without_cuda_a_real_run_is_refused(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    out = tmp_path / 'summary.json'
    proc = _run(['--out', str(out), '--no-training'], cwd=str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith('error: no CUDA device') and '--dry-run' in lines[-1]
    assert not [line for line in lines if line.startswith('error:')][:-1]
    assert not out.exists() and proc.stdout == ''


def test_bad_input_is_one_error_line(tmp_path, capsys):
    from direct_pretrain.cli.gpu_check import main
    out = tmp_path / 'missing' / 'summary.json'
    assert main(['--dry-run', '--out', str(out)]) == 2
    assert capsys.readouterr().err.strip().startswith('error: --out')
    assert main(['--dry-run', '--benchmarks', 'faster-rcnn-pretrian', '--work-dir', str(tmp_path / 'w')]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        "error: unknown benchmark 'faster-rcnn-pretrian'; choose from " + ', '.join(BENCHMARKS)]
    assert captured.out == '' and os.listdir(tmp_path) == []

"""Bad input to the tools: one clear error naming the path or value, a non-zero exit,
and no work dir written."""
import os.path as osp

import pytest
from dp_test_utils import TOOLS, TOY_FINETUNE, TOY_PRETRAIN, Payload, write_tiny_stage_configs
from forked_cli import ToolRun, run_tool, run_tools
from mmengine.config import Config

from direct_pretrain.cli.test import build_config as build_test_config, parse_args as parse_test_args
from direct_pretrain.cli.train import build_config as build_train_config, parse_args as parse_train_args
from direct_pretrain.config.paths import final_checkpoint_name
from direct_pretrain.errors import ConfigInputError


@pytest.fixture()
def configs(tmp_path, tiny_coco_root):
    return write_tiny_stage_configs(str(tmp_path / 'cfg'), tiny_coco_root)


def test_missing_config_exits_non_zero_and_writes_nothing(tmp_path):
    proc = run_tool(osp.join(TOOLS, 'train.py'), 'configs/nope.py', '--work-dir', 'wd', cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "config file 'configs/nope.py' does not exist" in proc.stderr
    assert proc.stderr.count('error:') == 1 and 'Traceback' not in proc.stderr
    assert not (tmp_path / 'wd').exists()


@pytest.mark.parametrize('override, message', [
    (['train_dataloader.dataset.dataset.data_root=/no/such/root/'], "data_root '/no/such/root/' does not exist"),
    (['train_dataloader.dataset.dataset.ann_file=annotations/missing.json'], 'annotations/missing.json'),
    (['train_dataloader.dataset.dataset.data_prefix.img=nowhere/'], "image folder"),
])
def test_missing_dataset_paths(configs, tmp_path, override, message):
    args = parse_train_args([configs[0], '--work-dir', str(tmp_path / 'wd'), '--cfg-options', *override])
    with pytest.raises(ConfigInputError, match=message):
        build_train_config(args)
    assert not (tmp_path / 'wd').exists()


def test_missing_load_from_names_the_pretrain_command(tmp_path):
    """The shipped toy finetune config before its pretrain ran (the test's folder has no work_dirs):
    the error names where the pretrain run writes its last checkpoint and the command that runs it."""
    args = parse_train_args([TOY_FINETUNE])
    with pytest.raises(ConfigInputError) as info:
        build_train_config(args)
    text = str(info.value)
    pretrain_name = osp.basename(TOY_PRETRAIN)
    written = f'work_dirs/{osp.splitext(pretrain_name)[0]}/{final_checkpoint_name(Config.fromfile(TOY_PRETRAIN))}'
    assert written in text
    assert f'./dist_train.sh configs/toy/{pretrain_name}' in text
    assert not (tmp_path / 'work_dirs').exists()


def test_unknown_eval_metric(configs, tmp_path):
    ckpt = tmp_path / 'fake.pth'
    ckpt.write_bytes(b'')
    args = parse_test_args([configs[1], str(ckpt), '--eval', 'bbox', 'mAP', '--work-dir', str(tmp_path / 'wd')])
    with pytest.raises(ConfigInputError, match='unknown metric.*mAP.*bbox, segm'):
        build_test_config(args)
    assert not (tmp_path / 'wd').exists()


def test_missing_test_checkpoint(configs, tmp_path):
    args = parse_test_args([configs[1], str(tmp_path / 'none.pth')])
    with pytest.raises(ConfigInputError, match='none.pth.*does not exist'):
        build_test_config(args)


def test_amp_without_cuda_is_a_clear_error(configs):
    import torch
    if torch.cuda.is_available():
        pytest.skip('CUDA present: --amp is valid here')
    with pytest.raises(ConfigInputError, match='--amp.*CUDA'):
        build_train_config(parse_train_args([configs[0], '--amp']))


def test_eval_selects_coco_metrics(configs, toy_model_checkpoint):
    cfg = build_test_config(parse_test_args([configs[1], toy_model_checkpoint, '--eval', 'segm']))
    assert cfg.test_evaluator.metric == ['segm'] and cfg.load_from == toy_model_checkpoint


def test_auto_scale_lr_flag(configs):
    cfg = build_train_config(parse_train_args([configs[0], '--auto-scale-lr']))
    base = Config.fromfile(TOY_PRETRAIN).auto_scale_lr
    assert base.enable is False  # the flag turns it on, keeping the config's base batch
    assert cfg.auto_scale_lr.enable is True and cfg.auto_scale_lr.base_batch_size == base.base_batch_size


def test_crafted_checkpoint_never_executes_through_the_tools(configs, tmp_path):
    """A .pth whose unpickling would create a file: test.py and train.py (load_from) refuse
    it up front naming the type (one error line, exit 2, no work dir), and the file is never created."""
    import torch

    target = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': Payload(str(target))}, evil)
    runs = run_tools([
        ToolRun(osp.join(TOOLS, 'test.py'), [configs[1], evil, '--work-dir', tmp_path / 'wd_test'], tmp_path),
        ToolRun(osp.join(TOOLS, 'train.py'), [configs[1], '--work-dir', tmp_path / 'wd_train', '--cfg-options',
                                              f'load_from={evil}'], tmp_path)])
    for proc in runs:
        assert proc.returncode == 2 and proc.stderr.count('error:') == 1, proc.stderr[-2000:]
        assert 'is unsafe to load' in proc.stderr and 'system' in proc.stderr, proc.stderr[-2000:]
        assert not target.exists() and not (tmp_path / 'wd_test').exists() and not (tmp_path / 'wd_train').exists()

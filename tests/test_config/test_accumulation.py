"""``--accumulate N`` (apply_gradient_accumulation): same optimizer steps as an N-times larger batch.

Through mmengine's Runner: a BN-free toy regressor trained with batch 2 x accumulate 2 ends
with the weights of batch 4 (SGD with momentum and weight decay, an iteration-based linear
warmup and an epoch-based step), and ``--auto-scale-lr`` scales the LR by the effective batch.
"""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from direct_pretrain.config.accumulation import apply_gradient_accumulation, effective_batch_size
from direct_pretrain.errors import ConfigInputError

BASE_LR = 0.05


class ToyRegressor(BaseModel):
    """Two linear layers, no normalisation: the loss is a mean over the batch."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, inputs, targets, mode='tensor'):
        out = self.net(inputs)
        return dict(loss=((out - targets)**2).mean()) if mode == 'loss' else out


class ToyData(Dataset):

    def __init__(self, n: int = 16) -> None:
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=gen)
        self.y = torch.randn(n, 2, generator=gen)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], targets=self.y[i])


class RecordStepLR(Hook):
    """The LR each optimizer step used (read before the schedulers advance)."""
    priority = 'HIGHEST'

    def __init__(self) -> None:
        self.lrs = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        wrapper = runner.optim_wrapper
        if wrapper._inner_count % wrapper._accumulative_counts == 0:
            self.lrs.append(wrapper.get_lr()['lr'][0])


def toy_cfg(batch_size: int) -> Config:
    return Config(dict(
        train_dataloader=dict(batch_size=batch_size),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=BASE_LR, momentum=0.9, weight_decay=1e-3)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3),
            dict(type='MultiStepLR', by_epoch=True, milestones=[1], gamma=0.5)
        ],
        auto_scale_lr=dict(enable=False, base_batch_size=4),
        train_cfg=dict(by_epoch=True, max_epochs=2)))


def build_runner(cfg: Config, work_dir: str, hooks=()) -> Runner:
    torch.manual_seed(0)  # same initial weights in every run
    return Runner(
        model=ToyRegressor(),
        work_dir=work_dir,
        train_dataloader=dict(dataset=ToyData(), sampler=dict(type='DefaultSampler', shuffle=True, seed=3),
                              batch_size=cfg.train_dataloader.batch_size, num_workers=0,
                              collate_fn=dict(type='default_collate')),
        train_cfg=cfg.train_cfg.to_dict(),
        optim_wrapper=copy.deepcopy(cfg.optim_wrapper.to_dict()),
        param_scheduler=copy.deepcopy(cfg.param_scheduler),
        auto_scale_lr=cfg.auto_scale_lr.to_dict(),
        default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=list(hooks),
        randomness=dict(seed=0),
        default_scope='mmengine',
        experiment_name=f'accumulate_{id(cfg)}')


def train(cfg: Config, work_dir: str):
    recorder = RecordStepLR()
    runner = build_runner(cfg, work_dir, [recorder])
    runner.train()
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}, recorder.lrs


def test_batch_2_accumulate_2_trains_like_batch_4(tmp_path):
    weights_4, lrs_4 = train(toy_cfg(4), str(tmp_path / 'b4'))
    cfg = toy_cfg(2)
    apply_gradient_accumulation(cfg, 2)
    weights_2x2, lrs_2x2 = train(cfg, str(tmp_path / 'b2x2'))
    assert len(lrs_2x2) == len(lrs_4) == 8  # 2 epochs x 4 optimizer steps
    assert lrs_2x2 == pytest.approx(lrs_4, rel=1e-6)  # warmup and step stay in optimizer steps
    assert lrs_4[:3] == pytest.approx([BASE_LR * 0.1, BASE_LR * 0.55, BASE_LR])
    for key in weights_4:
        torch.testing.assert_close(weights_2x2[key], weights_4[key], rtol=1e-5, atol=1e-6)


def test_without_the_schedule_conversion_the_runs_differ(tmp_path):
    """Negative control: accumulative_counts alone ends the warmup after half the steps."""
    weights_4, lrs_4 = train(toy_cfg(4), str(tmp_path / 'b4'))
    cfg = toy_cfg(2)
    cfg.optim_wrapper.accumulative_counts = 2
    weights, lrs = train(cfg, str(tmp_path / 'naive'))
    assert lrs[1] != pytest.approx(lrs_4[1])
    assert not torch.allclose(weights['net.0.weight'], weights_4['net.0.weight'], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('n', [1, 2, 4])
def test_auto_scale_lr_counts_the_accumulation(tmp_path, n):
    """lr = lr_cfg x world_size x batch_size x N / base_batch_size (world size 1 here)."""
    cfg = toy_cfg(2)
    cfg.auto_scale_lr = dict(enable=True, base_batch_size=16)
    apply_gradient_accumulation(cfg, n)
    assert effective_batch_size(cfg, world_size=1) == 2 * n
    runner = build_runner(cfg, str(tmp_path))
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.scale_lr(runner.optim_wrapper, runner.auto_scale_lr)
    assert runner.optim_wrapper.param_groups[0]['lr'] == pytest.approx(BASE_LR * 1 * 2 * n / 16)


def test_iteration_based_loop_and_schedulers_are_counted_in_micro_batches():
    cfg = Config(dict(
        train_dataloader=dict(batch_size=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
                         dict(type='MultiStepLR', by_epoch=False, begin=0, end=90000, milestones=[60000, 80000])],
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=90000, val_interval=5000),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000))))
    changes = apply_gradient_accumulation(cfg, 4)
    assert cfg.optim_wrapper.accumulative_counts == 4
    assert (cfg.param_scheduler[0].begin, cfg.param_scheduler[0].end) == (3, 2000)
    assert cfg.param_scheduler[1].milestones == [240000, 320000] and cfg.param_scheduler[1].end == 360000
    assert (cfg.train_cfg.max_iters, cfg.train_cfg.val_interval) == (360000, 20000)
    assert cfg.default_hooks.checkpoint.interval == 20000
    assert len(changes) == 6


def test_bad_requests_are_refused():
    with pytest.raises(ConfigInputError, match='positive integer'):
        apply_gradient_accumulation(toy_cfg(2), 0)
    cfg = toy_cfg(2)
    cfg.optim_wrapper.accumulative_counts = 3
    with pytest.raises(ConfigInputError, match='already sets optim_wrapper.accumulative_counts=3'):
        apply_gradient_accumulation(cfg, 2)
    cfg = toy_cfg(2)
    cfg.param_scheduler.append(dict(type='CosineAnnealingLR', by_epoch=False, T_max=100))
    with pytest.raises(ConfigInputError, match='CosineAnnealingLR'):
        apply_gradient_accumulation(cfg, 2)
    assert apply_gradient_accumulation(toy_cfg(2), 1) == []


def test_train_tool_flag_reaches_the_config(tmp_path, tiny_coco_root):
    """``dp-train CFG --accumulate 4 --auto-scale-lr`` builds the config transformed as above."""
    from dp_test_utils import write_tiny_stage_configs

    from direct_pretrain.cli.train import build_config, parse_args
    pretrain, _ = write_tiny_stage_configs(str(tmp_path / 'cfg'), tiny_coco_root)
    raw = Config.fromfile(pretrain)
    cfg = build_config(parse_args([pretrain, '--accumulate', '4', '--auto-scale-lr', '--work-dir', str(tmp_path / 'w')]))
    assert cfg.optim_wrapper.accumulative_counts == 4
    assert cfg.auto_scale_lr.enable and cfg.auto_scale_lr.base_batch_size == raw.auto_scale_lr.base_batch_size / 4
    warmup, raw_warmup = cfg.param_scheduler[0], raw.param_scheduler[0]
    assert (warmup.begin, warmup.end) == (raw_warmup.begin * 4 + 3, raw_warmup.end * 4)
    assert effective_batch_size(cfg, world_size=2) == 2 * raw.train_dataloader.batch_size * 4

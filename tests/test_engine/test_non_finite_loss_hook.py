"""NonFiniteLossHook through mmengine's Runner: stop before the step, skip and count, never
write NaN weights, resume with a lower LR or another seed.

A linear regressor whose loss becomes NaN at chosen iterations (``nan_at``, 1-based),
8 samples in batches of 2 (4 iterations per epoch), checkpoints after every epoch. The
real-process test on the toy detector is tests/test_tools/test_non_finite_loss_tool.py.
"""
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from direct_pretrain.engine.hooks import NonFiniteLossHook
from direct_pretrain.errors import NonFiniteLossError, NonFiniteWeightsError
from direct_pretrain.runtime.safe_load import safe_torch_load


class NaNAtModel(BaseModel):

    def __init__(self, nan_at=()) -> None:
        super().__init__()
        self.net = nn.Linear(4, 2)
        self.nan_at = set(nan_at)
        self.calls = 0

    def forward(self, inputs, targets, mode='tensor'):
        out = self.net(inputs)
        if mode != 'loss':
            return out
        self.calls += 1
        loss_fit = ((out - targets)**2).mean()
        if self.calls in self.nan_at:
            loss_fit = loss_fit * float('nan')
        return dict(loss_fit=loss_fit, loss_aux=0.1 * out.abs().mean())


class Data(Dataset):

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(8, 4, generator=gen), torch.randn(8, 2, generator=gen)

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=self.x[i], targets=self.y[i])


class Snapshots(Hook):
    """Weights after every iteration (index 0 = before training)."""
    priority = 'LOWEST'

    def __init__(self) -> None:
        self.weights = []

    def before_train(self, runner) -> None:
        self.weights.append(runner.model.net.weight.detach().clone())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.weights.append(runner.model.net.weight.detach().clone())


def make_runner(work_dir, hook: NonFiniteLossHook, nan_at=(), epochs=3, extra_hooks=(), accumulate=1, **kwargs):
    torch.manual_seed(0)
    return Runner(
        model=NaNAtModel(nan_at),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=Data(), sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2,
                              num_workers=0, collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9), accumulative_counts=accumulate),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=[hook, *extra_hooks],
        default_scope='mmengine',
        # what the tool's config would say
        cfg=dict(custom_hooks=[dict(type='NonFiniteLossHook')], optim_wrapper=dict(optimizer=dict(lr=0.1))),
        **kwargs)


def test_stop_at_the_iteration_before_the_step(tmp_path):
    snapshots = Snapshots()
    runner = make_runner(tmp_path, NonFiniteLossHook(), nan_at=(6, ), extra_hooks=[snapshots])
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    error = info.value
    message = str(error)
    assert error.iteration == 6 and '\n' not in message
    assert message.startswith('non-finite loss at iteration 6 (epoch 2, batch 2/4): loss_fit=nan')
    assert 'loss_aux' not in message and 'the weights were not updated' in message
    ckpt = osp.join(str(tmp_path), 'epoch_1.pth')
    assert error.last_checkpoint == ckpt and f'Last good checkpoint: {ckpt}' in message
    assert f'--resume {ckpt} --cfg-options custom_hooks.0.resume_lr_mult=0.5' in message
    assert 'custom_hooks.0.resume_seed=' in message
    # the NaN step never reached the weights: they are those after iteration 5
    assert len(snapshots.weights) == 6  # before training + iterations 1..5
    assert torch.equal(runner.model.net.weight, snapshots.weights[5])
    assert not osp.exists(osp.join(str(tmp_path), 'epoch_2.pth'))
    state = safe_torch_load(ckpt)['state_dict']
    assert all(bool(torch.isfinite(v).all()) for v in state.values())


def test_no_checkpoint_yet_says_how_to_restart(tmp_path):
    runner = make_runner(tmp_path, NonFiniteLossHook(), nan_at=(2, ))
    with pytest.raises(NonFiniteLossError, match=r'No checkpoint was written before it .*Restart with a lower LR or '
                       r'another seed: .*--cfg-options optim_wrapper\.optimizer\.lr=0\.05 randomness\.seed=\d+$'):
        runner.train()


def test_skip_counts_and_stops_after_max_skips(tmp_path):
    snapshots = Snapshots()
    runner = make_runner(tmp_path, NonFiniteLossHook(action='skip', max_skips=1), nan_at=(3, 7),
                         extra_hooks=[snapshots])
    with pytest.raises(NonFiniteLossError, match=r'iteration 7 .*after 1 skipped steps: loss_fit=nan'):
        runner.train()
    weights = snapshots.weights
    assert torch.equal(weights[3], weights[2])  # iteration 3 skipped
    assert not torch.equal(weights[4], weights[3])  # training went on
    assert runner.message_hub.get_info('train/non_finite_skips') == 1
    assert torch.equal(runner.model.net.weight, weights[6])


def test_skip_with_accumulation_drops_the_whole_window(tmp_path):
    """Accumulating 2: a NaN in iteration 3 discards window (3, 4); windows stay aligned."""
    snapshots = Snapshots()
    runner = make_runner(tmp_path, NonFiniteLossHook(action='skip', max_skips=5), nan_at=(3, ), epochs=1,
                         extra_hooks=[snapshots], accumulate=2)
    runner.train()
    weights = snapshots.weights
    assert torch.equal(weights[1], weights[0]) and not torch.equal(weights[2], weights[1])  # step after iter 2
    assert torch.equal(weights[4], weights[2])  # window (3, 4): no step
    assert runner.optim_wrapper._inner_count == 4
    assert all(p.grad is None or not p.grad.abs().sum() for p in runner.model.parameters())


class PoisonWeights(Hook):
    """A finite loss with an infinite gradient would do this: the step writes NaN weights."""

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == 4:
            with torch.no_grad():
                runner.model.net.weight[0, 0] = float('nan')


def test_a_checkpoint_with_nan_weights_is_not_written(tmp_path):
    runner = make_runner(tmp_path, NonFiniteLossHook(), extra_hooks=[PoisonWeights()])
    with pytest.raises(NonFiniteWeightsError, match=r"weights hold NaN/inf .*\['net.weight'\].*not written"):
        runner.train()
    assert not osp.exists(osp.join(str(tmp_path), 'epoch_1.pth'))


def test_resume_with_a_lower_lr_and_another_seed(tmp_path):
    make_runner(tmp_path, NonFiniteLossHook(), epochs=1, randomness=dict(seed=5)).train()
    ckpt = osp.join(str(tmp_path), 'epoch_1.pth')
    plain = make_runner(tmp_path / 'plain', NonFiniteLossHook(), epochs=2, resume=True, load_from=ckpt,
                        randomness=dict(seed=5))
    plain.train()
    assert plain.optim_wrapper.get_lr()['lr'] == [0.1] and plain.seed == 5
    resumed = make_runner(tmp_path / 'lower', NonFiniteLossHook(resume_lr_mult=0.5, resume_seed=11), epochs=2,
                          resume=True, load_from=ckpt, randomness=dict(seed=5))
    resumed.train()
    assert resumed.optim_wrapper.get_lr()['lr'] == [pytest.approx(0.05)]
    assert resumed.seed == 11 and resumed.epoch == 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="action='retry'"):
        NonFiniteLossHook(action='retry')
    with pytest.raises(ValueError, match='max_skips=-1'):
        NonFiniteLossHook(max_skips=-1)

"""NonFiniteLossHook with the loss-guarding optimizer wrappers, through mmengine's Runner: stop
before the step, skip and count, loss spikes, never write NaN weights, resume with a lower LR
or another seed; mmengine's objects are not patched.

A linear regressor whose loss becomes NaN (or is multiplied, ``spike``) at chosen iterations
(``nan_at``, 1-based), 8 samples in batches of 2 (4 iterations per epoch), checkpoints after
every epoch. The real-process tests on the toy detector are
tests/test_tools/test_non_finite_loss_tool.py.
"""
import logging
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from direct_pretrain.engine.hooks import NonFiniteLossHook
from direct_pretrain.engine.optim_wrappers import LossGuardAmpOptimWrapper, LossGuardOptimWrapper
from direct_pretrain.errors import LossSpikeError, NonFiniteLossError, NonFiniteWeightsError
from direct_pretrain.runtime.safe_load import safe_torch_load


class NaNAtModel(BaseModel):

    def __init__(self, nan_at=(), factor=float('nan')) -> None:
        super().__init__()
        self.net = nn.Linear(4, 2)
        self.nan_at = set(nan_at)
        self.factor = factor
        self.calls = 0

    def forward(self, inputs, targets, mode='tensor'):
        out = self.net(inputs)
        if mode != 'loss':
            return out
        self.calls += 1
        loss_fit = ((out - targets)**2).mean()
        if self.calls in self.nan_at:
            loss_fit = loss_fit * self.factor
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


def make_runner(work_dir, hook: NonFiniteLossHook, nan_at=(), epochs=3, extra_hooks=(), accumulate=1,
                wrapper=LossGuardOptimWrapper, factor=float('nan'), **kwargs):
    torch.manual_seed(0)
    return Runner(
        model=NaNAtModel(nan_at, factor),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=Data(), sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2,
                              num_workers=0, collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        # what the train tool selects for a config with NonFiniteLossHook
        optim_wrapper=dict(type=wrapper, optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
                           accumulative_counts=accumulate),
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
    """The epoch-end checkpoint after iteration 4 holds NaN: the message names iteration 4, the
    last one done (it named an iteration 5 that never ran)."""
    runner = make_runner(tmp_path, NonFiniteLossHook(), extra_hooks=[PoisonWeights()])
    with pytest.raises(NonFiniteWeightsError, match=r"weights hold NaN/inf .*\['net.weight'\].*not written") as info:
        runner.train()
    assert 'weights hold NaN/inf after iteration 4 (epoch 1, batch 4/4) ' in str(info.value)
    assert info.value.iteration == 4
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


class NothingPatched(Hook):
    """mmengine's objects keep their own methods while training: no instance attribute shadows
    the model's ``parse_losses`` or the wrapper's ``update_params``."""
    priority = 'LOWEST'

    def __init__(self) -> None:
        self.seen = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.seen.append(sorted({'parse_losses', 'update_params'} & (set(vars(runner.model)) |
                                                                      set(vars(runner.optim_wrapper)))))


def test_the_guard_is_the_optimizer_wrapper_not_a_patch(tmp_path):
    watcher = NothingPatched()
    runner = make_runner(tmp_path, NonFiniteLossHook(), epochs=1, extra_hooks=[watcher])
    runner.train()
    assert watcher.seen == [[]] * 4


def test_a_loss_spike_stops_like_a_nan(tmp_path):
    """Iteration 7 multiplies the loss by 1e6 (finite): refused before the step, as the median of
    the last 4 losses exists; a 20x rise, or a spike before the warm-up count, trains on."""
    snapshots = Snapshots()
    hook = NonFiniteLossHook(spike_factor=100, spike_window=4, spike_warmup=4)
    runner = make_runner(tmp_path, hook, nan_at=(7, ), factor=1e6, extra_hooks=[snapshots])
    with pytest.raises(LossSpikeError) as info:
        runner.train()
    message = str(info.value)
    assert message.startswith('loss spike at iteration 7 (epoch 2, batch 3/4): loss=') and '\n' not in message
    assert 'x its running level' in message and 'largest terms: loss_fit=' in message
    assert 'the weights were not updated with it' in message and info.value.iteration == 7
    assert info.value.loss > 100 * info.value.level
    assert f'--resume {osp.join(str(tmp_path), "epoch_1.pth")} --cfg-options custom_hooks.0.resume_lr_mult=0.5' \
        in message
    assert torch.equal(runner.model.net.weight, snapshots.weights[6])  # iteration 7 never stepped

    for name, hook, nan_at, factor, epochs in (
            ('small', NonFiniteLossHook(spike_factor=100, spike_window=4, spike_warmup=4), 7, 20.0, 2),
            ('early', NonFiniteLossHook(spike_factor=100, spike_window=4, spike_warmup=4), 4, 1e6, 1),
            ('off', NonFiniteLossHook(spike_factor=None), 7, 1e6, 2)):
        snapshots = Snapshots()
        make_runner(tmp_path / name, hook, nan_at=(nan_at, ), factor=factor, epochs=epochs,
                    extra_hooks=[snapshots]).train()
        assert not torch.equal(snapshots.weights[nan_at], snapshots.weights[nan_at - 1]), name  # trained on


def test_spikes_are_skipped_and_counted_with_skip(tmp_path):
    snapshots = Snapshots()
    hook = NonFiniteLossHook(action='skip', max_skips=3, spike_factor=100, spike_window=4, spike_warmup=4)
    runner = make_runner(tmp_path, hook, nan_at=(6, 10), factor=1e6, extra_hooks=[snapshots])
    runner.train()
    weights = snapshots.weights
    assert torch.equal(weights[6], weights[5]) and torch.equal(weights[10], weights[9])
    assert not torch.equal(weights[7], weights[6])
    assert runner.message_hub.get_info('train/non_finite_skips') == 2


def test_without_a_guarding_wrapper_the_hook_says_so(tmp_path):
    runner = make_runner(tmp_path, NonFiniteLossHook(), epochs=1, wrapper='OptimWrapper')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    runner.logger.addHandler(handler)  # mmengine's logger does not propagate to pytest's
    try:
        runner.train()
    finally:
        runner.logger.removeHandler(handler)
    log = '\n'.join(r.getMessage() for r in records)
    assert 'optim_wrapper OptimWrapper does not check the loss before the optimizer step' in log
    assert "optim_wrapper.type='LossGuardOptimWrapper'" in log


def test_the_wrapper_alone_stops_the_run(tmp_path):
    """A config that selects the wrapper without the hook: the refused step still ends the run."""
    runner = make_runner(tmp_path, Snapshots(), nan_at=(2, ))
    with pytest.raises(NonFiniteLossError, match='non-finite loss at iteration 2: loss=nan; the weights were not '
                       'updated with it. Add NonFiniteLossHook'):
        runner.train()


def test_amp_wrapper_is_guarded_too(tmp_path, monkeypatch):
    """``--amp`` selects LossGuardAmpOptimWrapper: its scaled backward and scaler step sit under
    the same guard. (AmpOptimWrapper insists on an accelerator; on CPU its scaler is disabled,
    which leaves the class composition to test.)"""
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    snapshots = Snapshots()
    runner = make_runner(tmp_path, NonFiniteLossHook(), nan_at=(3, ), extra_hooks=[snapshots],
                         wrapper=LossGuardAmpOptimWrapper)
    with pytest.raises(NonFiniteLossError, match=r'^non-finite loss at iteration 3 \(epoch 1, batch 3/4\): loss_fit=nan'):
        runner.train()
    assert isinstance(runner.optim_wrapper, LossGuardAmpOptimWrapper)
    assert torch.equal(runner.model.net.weight, snapshots.weights[2])

"""Helpers shared by the model tests (imported, not collected)."""
from typing import Dict, Sequence

import pytest
import torch
from torch import nn

__all__ = ['single_torch_thread', 'train_steps', 'changed', 'assert_pyramid', 'STRIDES']

STRIDES = (4, 8, 16, 32)


@pytest.fixture(autouse=True)
def single_torch_thread():
    """One intra-op thread per test: the test machine's 2 cores are shared, and
    oversubscribed threads make the tiny CPU training steps here up to 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_steps(model: nn.Module, batch: int = 2, size: int = 64, steps: int = 1) -> Dict[str, torch.Tensor]:
    """SGD step(s) on random images; returns the parameters from before the first step."""
    torch.manual_seed(0)
    model.train()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(steps):
        optimizer.zero_grad()
        outs = model(torch.randn(batch, 3, size, size))
        loss = sum((out - 1).pow(2).mean() for out in outs)
        loss.backward()
        optimizer.step()
    return before


def changed(model: nn.Module, before: Dict[str, torch.Tensor]) -> Dict[str, bool]:
    """Which parameters differ from ``before``."""
    return {k: not torch.equal(v.detach(), before[k]) for k, v in model.named_parameters()}


def assert_pyramid(outs: Sequence[torch.Tensor], channels: Sequence[int], size: int = 64, batch: int = 1) -> None:
    """Outputs are (batch, C_i, size / s, size / s) for strides 4/8/16/32."""
    assert [tuple(o.shape) for o in outs] == [(batch, c, size // s, size // s) for c, s in zip(channels, STRIDES)]

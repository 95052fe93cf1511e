"""One rank of the gloo SyncBN tests (run as a subprocess by test_sync_batch_norm.py).

Usage: ``python sync_bn_worker.py RANK WORLD_SIZE INIT_FILE CASES_FILE OUT_DIR``. The parent
writes the inputs of every case to CASES_FILE; each rank runs its share through
:class:`SyncBNAnyBackend` and saves outputs, gradients and running statistics to
``OUT_DIR/rank{RANK}.pt`` for the parent to compare with plain BN on the whole batch.
"""
import logging
import sys
from typing import Any, Dict, List

import torch
import torch.distributed as dist
from torch import nn

from direct_pretrain.models.layers import SyncBNAnyBackend, convert_to_sync_bn_any_backend

__all__ = ['main']


def run_layer_case(case: Dict[str, Any], rank: int) -> Dict[str, Any]:
    """Train steps then an eval forward of one SyncBN layer on this rank's inputs."""
    bn = SyncBNAnyBackend(case['channels'], momentum=case['momentum'], affine=case['affine']).double()
    if case['affine']:
        with torch.no_grad():
            bn.weight.copy_(case['weight'])
            bn.bias.copy_(case['bias'])
    steps: List[Dict[str, torch.Tensor]] = []
    for inputs, grads in zip(case['inputs'], case['grads']):
        x = inputs[rank].clone().requires_grad_(True)
        y = bn(x)
        (y * grads[rank]).sum().backward()
        step = dict(out=y.detach(), grad_input=x.grad.detach())
        if case['affine']:
            step.update(grad_weight=bn.weight.grad.detach().clone(), grad_bias=bn.bias.grad.detach().clone())
            bn.weight.grad = None
            bn.bias.grad = None
        steps.append(step)
    bn.eval()
    with torch.no_grad():
        eval_out = bn(case['eval_input'])
    return dict(steps=steps, running_mean=bn.running_mean.clone(), running_var=bn.running_var.clone(),
                num_batches_tracked=bn.num_batches_tracked.clone(), eval_out=eval_out)


def run_ddp_case(case: Dict[str, Any], rank: int) -> Dict[str, Any]:
    """One SGD step of a small conv-BN net, converted to SyncBN and wrapped in DDP."""
    torch.manual_seed(case['seed'])
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1)).double()
    model = convert_to_sync_bn_any_backend(model)
    ddp = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    loss = ddp(case['inputs'][rank]).pow(2).mean()
    loss.backward()
    optimizer.step()
    return dict(state={k: v.detach().clone() for k, v in model.state_dict().items()},
                bn_type=type(model[1]).__name__)


def run_too_small_case(rank: int) -> str:
    """One value per channel over the whole group must fail on every rank, not hang."""
    bn = SyncBNAnyBackend(2)
    try:
        bn(torch.ones(1 - rank, 2))  # rank 0: one sample, rank 1: none
    except ValueError as error:
        return str(error)
    return ''


def main(argv: List[str]) -> None:
    rank, world_size, init_file, cases_file, out_dir = argv
    rank, world_size = int(rank), int(world_size)
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world_size)
    try:
        cases = torch.load(cases_file, weights_only=True)
        results = {name: run_layer_case(case, rank) for name, case in cases['layer'].items()}
        results['ddp'] = run_ddp_case(cases['ddp'], rank)
        results['too_small'] = run_too_small_case(rank)
        torch.save(results, f'{out_dir}/rank{rank}.pt')
        # Both ranks leave their last collective before either tears the group down: a rank
        # that closes its gloo sockets while the peer is still in one aborts the peer.
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == '__main__':
    logging.basicConfig(level=logging.WARNING)
    main(sys.argv[1:])

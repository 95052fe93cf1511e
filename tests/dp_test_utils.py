"""Helpers shared by the tests: repository paths, child-process environment, tiny configs."""
import os
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO_ROOT, 'tools')
PYTHON = sys.executable
TOY_PRETRAIN = osp.join(REPO_ROOT, 'configs/toy/mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py')
TOY_FINETUNE = osp.join(REPO_ROOT, 'configs/toy/mask-rcnn_r18_fpn_1xb2-direct-finetune_toy.py')


class Payload:
    """A pickle payload that would create ``target`` if unpickled by an unsafe loader."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f'touch {self.target}', ))


def python_env() -> dict:
    """Environment for child processes: the repo on PYTHONPATH, one thread per process."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [REPO_ROOT, env.get('PYTHONPATH')]))
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


_DATA_OVERRIDES = '''
data_root = {root!r}
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, {train_dataset})
test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
train_cfg = dict(max_epochs={epochs})
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0, deterministic=True)
'''


def write_tiny_stage_configs(folder: str, data_root: str, pretrain_epochs: int = 1,
                             finetune_epochs: int = 1) -> tuple:
    """Stage configs that inherit the toy pair and point it at ``data_root``, small and fast.

    Returns (pretrain config path, finetune config path).
    """
    os.makedirs(folder, exist_ok=True)
    root = data_root.rstrip('/') + '/'
    pre = osp.join(folder, 'tiny_pretrain.py')
    with open(pre, 'w') as f:
        f.write(f'_base_ = {TOY_PRETRAIN!r}\n' + _DATA_OVERRIDES.format(
            root=root, epochs=pretrain_epochs,
            train_dataset='dataset=dict(times=1, dataset=dict(data_root=data_root))'))
    ft = osp.join(folder, 'tiny_finetune.py')
    with open(ft, 'w') as f:
        f.write(f'_base_ = {TOY_FINETUNE!r}\n' + _DATA_OVERRIDES.format(
            root=root, epochs=finetune_epochs, train_dataset='dataset=dict(data_root=data_root)') +
            f'pretrain_config = {pre!r}\nload_from = None\n'
            'param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=2)]\n')
    return pre, ft

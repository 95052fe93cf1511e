"""Where a run's files are: the config a name stands for, its default work dir, its last checkpoint.

Why one module: the tools, the chain and the checks all need these answers, and each must
get the same one - a config named ``direct_pretrain::toy/x.py`` resolves to the installed
file wherever it is asked, and the chain's stage dirs are the work dirs ``dp-train`` would
pick itself.
"""
import os.path as osp
from typing import Optional

from mmengine.config import Config

from ..errors import ConfigInputError

__all__ = ['SCOPE_PREFIX', 'installed_configs_dir', 'resolve_config_path', 'default_work_dir',
           'final_checkpoint_name']

SCOPE_PREFIX = 'direct_pretrain::'


def installed_configs_dir() -> str:
    """The configs installed with the package (``direct_pretrain/.mim/configs``, like mmdet's)."""
    return osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs')


def resolve_config_path(path: str) -> str:
    """``path`` itself when it is a file; else ``direct_pretrain::<name>`` or a bare
    ``<name>`` (e.g. ``toy/mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py``) under the
    installed configs, so the tools work from any directory.

    Raises:
        ConfigInputError: neither exists.
    """
    if osp.isfile(path):
        return path
    name = path[len(SCOPE_PREFIX):] if path.startswith(SCOPE_PREFIX) else path
    installed = osp.join(installed_configs_dir(), name)
    if not osp.isabs(name) and osp.isfile(installed):
        return installed
    raise ConfigInputError(f'config file {path!r} does not exist; pass the path of a .py config, or the name of '
                           f'an installed one relative to {installed_configs_dir()} (e.g. '
                           "'direct_pretrain::toy/mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py').")


def default_work_dir(config_path: str, root: Optional[str] = None) -> str:
    """mmdet's default work dir of a config: ``<root or ./work_dirs>/<config file name without .py>``."""
    return osp.join(root or './work_dirs', osp.splitext(osp.basename(config_path))[0])


def final_checkpoint_name(cfg: Config) -> str:
    """File name of the checkpoint a complete run of ``cfg`` writes last."""
    train_cfg = cfg.get('train_cfg') or {}
    if train_cfg.get('type') in ('IterBasedTrainLoop', ) or train_cfg.get('by_epoch') is False:
        return f'iter_{train_cfg["max_iters"]}.pth'
    return f'epoch_{train_cfg["max_epochs"]}.pth'

"""Load a run's config the way mmdet's tools do, plus the package's command-line options.

Why: training and testing both start from ``Config.fromfile`` + ``--cfg-options`` + the mmdet
default work dir; ``--data-root`` and the type check of ``--cfg-options`` values belong to
that same first step, so both entry points share it.
"""
from typing import Any, Dict, Optional

from mmengine.config import Config

from ..errors import ConfigInputError
from .consistency_checks import list_merge_advice
from .data_root import set_data_root
from .option_checks import check_option_types
from .paths import default_work_dir, resolve_config_path

__all__ = ['load_config']


def load_config(path: str, work_dir: Optional[str] = None, cfg_options: Optional[Dict[str, Any]] = None,
                launcher: str = 'none', data_root: Optional[str] = None) -> Config:
    """Load ``path``, apply ``cfg_options`` (a value replacing a number must be one) and
    ``data_root`` (:func:`~.data_root.set_data_root`, wherever the datasets nest it), and
    resolve the work dir the mmdet way (``work_dir`` argument, else the config's, else
    ``./work_dirs/<config name>``).

    Raises:
        ConfigInputError: the config does not exist, merges a dict into a base list, or an
            option has the wrong type.
    """
    resolved = resolve_config_path(path)
    try:
        cfg = Config.fromfile(resolved)
    except TypeError as error:  # mmengine's "cannot inherit" of a dict into a base list (Cascade's heads)
        advice = list_merge_advice(resolved, error)
        if advice is None:
            raise
        raise ConfigInputError(advice) from error
    cfg.launcher = launcher
    if cfg_options is not None:
        check_option_types(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    if data_root is not None:
        set_data_root(cfg, data_root)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = default_work_dir(path)
    return cfg

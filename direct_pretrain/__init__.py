"""direct_pretrain: direct detection pre-training as an MMDetection 3.x plugin.

Importing the package registers all of its modules into MMDetection's registries and
makes mmengine's checkpoint loading work under torch >= 2.6 with ``weights_only``
kept on (see :mod:`direct_pretrain.checkpoint.safe_load`) and its local file writes
atomic (see :mod:`direct_pretrain.checkpoint.atomic_save`).
"""
from .version import __version__
from .checkpoint import install_atomic_checkpoint_saving, install_safe_checkpoint_loading

install_safe_checkpoint_loading()
install_atomic_checkpoint_saving()

from . import apis, checkpoint, datasets, engine, models  # noqa: E402,F401  (registers modules)

__all__ = ['__version__', 'apis', 'checkpoint', 'datasets', 'engine', 'models']

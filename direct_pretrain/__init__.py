"""direct_pretrain: direct detection pre-training as an MMDetection 3.x plugin.

Importing the package (what ``custom_imports=dict(imports=['direct_pretrain'])`` does)
registers its modules into MMDetection's registries, the ``atomic_local`` file backend
and the ``detectron://`` checkpoint scheme into mmengine's, and the ``direct_pretrain::``
config scope, so that ``_base_ = 'direct_pretrain::toy/<config>.py'`` resolves like
``mmdet::``. None of these changes what a config does not select.

The one behaviour it changes: mmengine's loading of local checkpoints goes through a
``weights_only=True`` loader that allow-lists exactly what mmengine checkpoints hold
(:mod:`direct_pretrain.runtime.safe_load`); without it, mmengine 0.10.7 cannot load its
own checkpoints under torch >= 2.6 (resume, ``load_from``, testing).

The entry points (:mod:`direct_pretrain.apis`), the chain, the reports (matplotlib), the
analysis tools and the command-line tools are not imported here; import them where they
are needed.
"""
from mmengine.config.utils import MODULE2PACKAGE

from . import registry  # noqa: F401  (the direct_pretrain registry scope)
from .checkpoint import register_detectron_scheme, register_release_scheme
from .runtime import install_safe_checkpoint_loading, register_atomic_backend
from .version import __version__

install_safe_checkpoint_loading()
register_atomic_backend()
register_detectron_scheme()
register_release_scheme()
MODULE2PACKAGE.setdefault('direct_pretrain', 'direct_pretrain')  # the direct_pretrain:: config scope

from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401  (registers modules)

__all__ = ['__version__', 'checkpoint', 'datasets', 'engine', 'evaluation', 'models', 'runtime', 'visualization']

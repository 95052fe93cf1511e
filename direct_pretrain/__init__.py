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
# The direct_pretrain:: config scope. mmengine resolves `pkg::name` under get_installed_path(MODULE2PACKAGE[pkg]):
# for a distribution's name that is the dist-info's folder, which an editable install keeps in site-packages while
# the package stays in the checkout. A module path that names no distribution makes mmengine ask importlib for the
# module's spec instead, which is the folder this package was imported from in every kind of install.
MODULE2PACKAGE.setdefault('direct_pretrain', 'direct_pretrain.registry')

from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401  (registers modules)

__all__ = ['__version__', 'checkpoint', 'datasets', 'engine', 'evaluation', 'models', 'runtime', 'visualization']

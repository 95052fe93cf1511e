"""The ``direct_pretrain`` registry scope: empty children of MMDetection's registries.

Why: a config that inherits ``direct_pretrain::<folder>/<config>.py`` gets ``_scope_ =
'direct_pretrain'`` on the typed dicts that the inherited file defines itself (mmengine marks
what each external base contributes with its scope, as it does for ``mmdet::``). mmengine
then builds them in the registry of that scope, which it finds by importing
``direct_pretrain.registry`` and searching the registry tree for the scope. The package
registers its modules straight into mmdet's registries (so ``default_scope='mmdet'`` sees
them); these children hold nothing themselves, and every lookup in them falls through to
mmdet's registry and then mmengine's root, exactly as in the ``mmdet`` scope.
"""
from mmengine.registry import Registry

from mmdet import registry as mmdet_registry

__all__ = ['RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
           'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
           'PARAM_SCHEDULERS', 'METRICS', 'EVALUATOR', 'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS']


def _child(parent: Registry) -> Registry:
    # ``locations``: importing the package is what registers its modules (into mmdet's
    # registries); without it mmengine would look for a ``utils.register_all_modules``.
    return Registry(parent.name, parent=parent, scope='direct_pretrain', locations=['direct_pretrain'])


RUNNERS = _child(mmdet_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child(mmdet_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child(mmdet_registry.LOOPS)
HOOKS = _child(mmdet_registry.HOOKS)
DATASETS = _child(mmdet_registry.DATASETS)
DATA_SAMPLERS = _child(mmdet_registry.DATA_SAMPLERS)
TRANSFORMS = _child(mmdet_registry.TRANSFORMS)
MODELS = _child(mmdet_registry.MODELS)
MODEL_WRAPPERS = _child(mmdet_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(mmdet_registry.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child(mmdet_registry.OPTIMIZERS)
OPTIM_WRAPPERS = _child(mmdet_registry.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(mmdet_registry.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(mmdet_registry.PARAM_SCHEDULERS)
METRICS = _child(mmdet_registry.METRICS)
EVALUATOR = _child(mmdet_registry.EVALUATOR)
TASK_UTILS = _child(mmdet_registry.TASK_UTILS)
VISUALIZERS = _child(mmdet_registry.VISUALIZERS)
VISBACKENDS = _child(mmdet_registry.VISBACKENDS)
LOG_PROCESSORS = _child(mmdet_registry.LOG_PROCESSORS)

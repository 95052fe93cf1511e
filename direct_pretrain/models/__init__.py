from . import backbones, layers, roi_heads, task_modules  # noqa: F401  (registers modules)

__all__ = ['backbones', 'layers', 'roi_heads', 'task_modules']

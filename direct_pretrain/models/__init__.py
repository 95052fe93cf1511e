from . import backbones, layers  # noqa: F401  (registers modules)

__all__ = ['backbones', 'layers']

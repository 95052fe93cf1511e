from . import hooks  # noqa: F401  (registers hooks)

__all__ = ['hooks']

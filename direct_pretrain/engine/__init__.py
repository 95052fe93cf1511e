from . import hooks, optim_wrappers  # noqa: F401  (registers hooks and optimizer wrappers)

__all__ = ['hooks', 'optim_wrappers']

from .load_from_check_hook import LoadFromCheckHook

__all__ = ['LoadFromCheckHook']

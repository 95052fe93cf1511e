"""The numpy globals a weights file may reference, for both restricted unpicklers.

Why one table: torch's weights-only loader (mmengine checkpoints, :mod:`.safe_load`) and the
Detectron ``.pkl`` unpickler (:mod:`.detectron_pickle`) must accept exactly the same numpy
reconstruction functions - arrays, dtypes, scalars, under both numpy 1 (``numpy.core``) and
numpy 2 (``numpy._core``, ``numpy.dtypes.*DType``) names - and nothing else.
"""
from typing import Callable, Dict, Tuple

import numpy as np

__all__ = ['numpy_safe_globals']


def numpy_safe_globals() -> Dict[Tuple[str, str], Callable]:
    """``(module, name) -> object`` for every numpy global an array pickle may name."""
    core = np._core if hasattr(np, '_core') else np.core  # numpy 2 / numpy 1
    allowed: Dict[Tuple[str, str], Callable] = {('numpy', 'ndarray'): np.ndarray, ('numpy', 'dtype'): np.dtype}
    # numpy-1 files name numpy.core.multiarray, numpy 2 writes numpy._core.multiarray.
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed[(module, '_reconstruct')] = core.multiarray._reconstruct
        allowed[(module, 'scalar')] = core.multiarray.scalar
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25 pickles dtypes as numpy.dtypes.Float64DType etc.
    if dtypes is not None:
        for name in dir(dtypes):
            if name.endswith('DType') and name != 'ObjectDType':
                allowed[('numpy.dtypes', name)] = getattr(dtypes, name)
    return allowed

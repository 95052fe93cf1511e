"""Let a child process die with its parent (Linux ``PR_SET_PDEATHSIG``).

Why: when a training process is killed (SIGKILL, or SIGTERM, whose default action ends the
process without any Python clean-up), its dataloader workers are re-parented to PID 1.
torch's worker watchdog only notices between two batches, and a worker blocked on a full
result queue never gets there: it lives on for minutes to hours, holding memory and the
run's stdout (so ``train.py | tee log`` never returns). Asking the kernel to send SIGKILL
to the worker when its parent dies closes that gap without any cooperation from the parent.
On other systems the call does nothing.
"""
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
from typing import Optional

__all__ = ['die_with_parent']

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_libc = None


def _load_libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
    return _libc


def die_with_parent(sig: int = signal.SIGKILL, parent_pid: Optional[int] = None) -> bool:
    """Have the kernel send ``sig`` to this process when its parent exits.

    Note the Linux semantics: the signal fires when the *thread* that created this process
    exits; torch creates dataloader workers from the thread that iterates the loader (the
    main thread in mmengine's loops), and ``subprocess`` children from the calling thread.

    Args:
        sig (int): Signal to receive. Defaults to SIGKILL.
        parent_pid (int, optional): The expected parent. When the parent already died
            before this call (a race the kernel setting cannot cover), the process sends
            itself ``sig`` at once. Defaults to the parent at call time.

    Returns:
        bool: True when the death signal is set (Linux), False otherwise.
    """
    if not sys.platform.startswith('linux'):
        return False
    expected = os.getppid() if parent_pid is None else parent_pid
    try:
        result = _load_libc().prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError) as error:  # no libc / no prctl: keep running without it
        logger.debug('prctl(PR_SET_PDEATHSIG) unavailable: %s', error)
        return False
    if result != 0:
        logger.debug('prctl(PR_SET_PDEATHSIG) failed: errno %d', ctypes.get_errno())
        return False
    if os.getppid() != expected:  # the parent died before the setting took effect
        os.kill(os.getpid(), sig)
    return True

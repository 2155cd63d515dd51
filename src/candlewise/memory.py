"""Give freed heap memory back to the OS after a large, finished allocation (training).

Why: glibc keeps freed arenas mapped, so a process that trained six models (pandas frames,
feature matrices, torch tensors: ~120 MB at peak) keeps that RSS for the rest of a long replay
or deployment although Python freed it. ``malloc_trim(0)`` returns it; elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_freed_memory() -> bool:
    """Collect garbage, then trim the heap; True when the C library could be asked."""
    gc.collect()
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True

"""Give freed heap memory back to the system, and keep glibc from multiplying arenas.

A long-lived daemon with a pool of worker threads churns through large short-lived
buffers (table bytes, decoded chunk batches, S3 bodies). glibc serves each thread
from its own malloc arena (up to eight per core) and returns the top of an arena to
the kernel only when the free block there is large, so RSS ratchets up with every
burst and stays up. Two remedies, both no-ops where glibc is absent:

* ``limit_arenas`` caps the number of arenas (as ``MALLOC_ARENA_MAX`` would) before
  the worker threads start, so freed memory is reused across threads;
* ``release_free_memory`` asks glibc to hand free pages of every arena back to the
  kernel (``malloc_trim``); the daemon calls it from its periodic maintenance.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h
ARENAS = 2


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    if not (hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt")):
        return None  # not glibc (e.g. musl): nothing to tune
    return libc


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas; True if the allocator accepted it."""
    libc = _libc()
    if libc is None:
        return False
    accepted = bool(libc.mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(arenas)))
    if not accepted:
        log.warning("glibc refused to cap malloc arenas at %d", arenas)
    return accepted


def release_free_memory() -> bool:
    """Return free heap pages to the kernel; True if any memory was released."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(ctypes.c_size_t(0)))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_figures() -> dict[str, int]:
    """glibc's own account of the heap (all arenas): bytes in use, free inside it, and in mmap'd blocks.

    Free bytes that stay high after ``release_free_memory`` mean fragmentation;
    in-use bytes that keep climbing mean something holds on to memory.
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return {}
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {"heap_in_use": info.uordblks, "heap_free": info.fordblks, "mmapped": info.hblkhd,
            "heap_size": info.arena}

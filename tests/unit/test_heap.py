"""The daemon's heap hygiene against the real glibc allocator of this process."""

from __future__ import annotations

import resource

import psutil
import pytest

from nbsd import heap

pytestmark = pytest.mark.skipif(heap._libc() is None, reason="needs glibc (the daemon's production allocator)")


def test_free_pages_in_the_middle_of_the_heap_go_back_to_the_kernel() -> None:
    me = psutil.Process()
    heap.release_free_memory()
    before = me.memory_full_info().uss
    blocks = [bytes(4000) for _ in range(20_000)]  # ~80 MB of malloc'd blocks, above pymalloc's size
    pin = bytes(4000)  # allocated last: the freed blocks below it cannot be trimmed from the top
    del blocks
    kept = me.memory_full_info().uss
    assert kept - before > 40 << 20, "glibc gave the freed pages back by itself: the test proves nothing"
    assert heap.release_free_memory()
    assert me.memory_full_info().uss - before < 20 << 20
    del pin


def test_arena_cap_is_accepted() -> None:
    assert heap.tune_allocator(8)  # this process's own setting is not the daemon's: a generous cap


def test_a_write_s_buffers_reuse_freed_memory_instead_of_faulting_in_fresh_pages() -> None:
    """Parts of 2 MiB, allocated and freed one after another as the daemon receives them, fault their pages
    in once: with a threshold at or below their size, each would get a fresh mapping (512 faults apiece)."""
    assert heap.tune_allocator(8)
    part = 2 << 20
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for i in range(20):
        buffer = bytes([i]) * part  # written whole, as a received part is
        del buffer
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    assert faults < 4 * part // 4096, f"{faults} page faults for 20 parts of 2 MiB"

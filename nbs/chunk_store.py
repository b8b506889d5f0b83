"""The chunk-store contract shared by ``NomsBlockStore`` and the daemon client.

A chunk store holds immutable chunks addressed by the SHA-512 prefix of their
bytes and one mutable root.  Writes (``put``) become durable only when
``commit`` succeeds; ``commit(current, last)`` moves the root from ``last`` to
``current`` with optimistic concurrency and returns False when another writer
moved it first (the store then reflects the newer state).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, runtime_checkable

from nbs.addr import Addr
from nbs.stats import Stats

# Addresses per read of iter_many: about 1 MiB of typical (4 KiB) chunks.  A batch that small is under the
# heap size past which glibc hands freed memory back to the kernel (2 MiB once it has seen 1 MiB reads), so
# each batch reuses the last one's pages: in fresh processes 256 reached 0.75-0.78 of the read limit, 1,024
# 0.55-0.74.
ITER_BATCH = 256
# Batches of addresses a local store locates before it reads them in file order: far more addresses than a
# batch, so that records asked in any order lie close enough in their file to be read together.
ITER_WINDOW = 256


@runtime_checkable
class ChunkStore(Protocol):
    def get(self, addr: bytes) -> bytes | None:
        """The chunk stored under ``addr``, or None."""

    def get_many(self, addrs: Iterable[bytes]) -> dict[bytes, bytes]:
        """Every found chunk, keyed by the requested address objects; absent ones are left out."""

    def iter_many(self, addrs: Iterable[bytes], batch: int = ITER_BATCH) -> Iterator[tuple[bytes, bytes]]:
        """Go's ``GetMany``: each found chunk as ``(addr, data)``, in no set order; absent ones are left out.

        Reads ``batch`` addresses at a time, so it holds one batch of chunks,
        not all of them, and the memory of a batch the caller let go serves
        the next (fresh memory costs a page fault per 4 KiB).  A larger batch
        amortises round trips to a remote store over more chunks.
        """

    def has(self, addr: bytes) -> bool: ...

    def has_many(self, addrs: Iterable[bytes]) -> set[bytes]:
        """The requested addresses that are absent."""

    def put(self, data: bytes) -> Addr:
        """Buffer a chunk and return its address (durable after the next successful commit)."""

    def put_many(self, chunks: Iterable[bytes]) -> list[Addr]:
        """``[put(c) for c in chunks]`` in one call (hashed in parallel); nothing is put if any chunk is refused."""

    def count(self) -> int:
        """Chunks stored, pending ones included (duplicates across tables counted)."""

    def root(self) -> Addr:
        """The root as of the last commit, rebase or open."""

    def rebase(self) -> None:
        """Catch up with commits made by other writers."""

    def commit(self, current: bytes, last: bytes) -> bool:
        """Persist pending chunks and move the root from ``last`` to ``current``."""

    def version(self) -> str:
        """The Noms data-format version of the store (``7.18``)."""

    def stats(self) -> Stats: ...

    def close(self) -> None: ...


def iter_in_batches(get_many: Callable[[Iterable[bytes]], dict[bytes, bytes]], addrs: Iterable[bytes],
                    batch: int = ITER_BATCH) -> Iterator[tuple[bytes, bytes]]:
    """``iter_many`` from a store's ``get_many``: one call per ``batch`` addresses, taken lazily from ``addrs``.

    An address asked for again in a later batch is not read again (Go's ``GetMany`` takes a set).
    """
    check_batch(batch)
    return iter_windows(lambda fresh: get_many(fresh).items(), addrs, batch)


def check_batch(batch: int) -> None:
    """Refuse, at the call (not at the first chunk), an ``iter_many`` batch of no address."""
    if batch < 1:
        raise ValueError(f"iter_many reads at least one address at a time, not {batch}")


def iter_windows(read: Callable[[list[bytes]], Iterable[tuple[bytes, bytes]]], addrs: Iterable[bytes],
                 window: int) -> Iterator[tuple[bytes, bytes]]:
    """``read`` of ``window`` addresses at a time, taken lazily from ``addrs``, each address once.

    ``read`` gets each window's addresses not asked for before, in asked order.
    """
    wanted = iter(addrs)
    seen: set[bytes] = set()
    while taken := list(itertools.islice(wanted, window)):
        fresh = [a for a in dict.fromkeys(taken) if a not in seen]  # a list in asked order: 7-10% faster than a set
        if fresh:
            seen.update(fresh)
            yield from read(fresh)

"""The chunk-store contract shared by ``NomsBlockStore`` and the daemon client.

A chunk store holds immutable chunks addressed by the SHA-512 prefix of their
bytes and one mutable root.  Writes (``put``) become durable only when
``commit`` succeeds; ``commit(current, last)`` moves the root from ``last`` to
``current`` with optimistic concurrency and returns False when another writer
moved it first (the store then reflects the newer state).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from nbs.addr import Addr
from nbs.stats import Stats


@runtime_checkable
class ChunkStore(Protocol):
    def get(self, addr: bytes) -> bytes | None:
        """The chunk stored under ``addr``, or None."""

    def get_many(self, addrs: Iterable[bytes]) -> dict[bytes, bytes]:
        """Every found chunk, keyed by the requested address objects; absent ones are left out."""

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

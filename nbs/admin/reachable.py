"""The reachability check of ``nbs verify --reachable``: every chunk the root leads to is stored and decodes.

The walk follows the refs of each Noms value (NOMS-VALUES.md 3.2) from the
root, reading chunks in batches through the store.  It remembers every
address it has visited (20 bytes each, so memory grows with the reachable
chunk count, as ``git fsck`` does); chunk bytes are dropped once decoded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from nbs.addr import EMPTY_ADDR, Addr
from nbs.chunk_store import ChunkStore
from nbs.errors import NBSError
from nbs.noms.decode import decode_value
from nbs.noms.errors import NomsError
from nbs.noms.walk import walk_refs

BATCH = 512


def missing_chunks(store: ChunkStore, advance: Callable[[int], object]) -> Iterator[tuple[Addr, str]]:
    """``(chunk, what is wrong)`` for every reachable chunk that is missing or unreadable; ``advance(n)``
    reports chunks visited."""
    root = store.root()
    if root == EMPTY_ADDR:
        return
    seen = {bytes(root)}
    pending: list[tuple[bytes, bytes | None]] = [(bytes(root), None)]
    while pending:
        batch = pending[-BATCH:]
        del pending[-BATCH:]
        for addr, data in _read(store, batch):
            if isinstance(data, str):
                yield Addr(addr), data
                continue
            try:
                value = decode_value(data)
            except NomsError as err:
                yield Addr(addr), f"does not decode as a Noms value: {err}"
                continue
            for ref in walk_refs(value):
                target = bytes(ref.target)
                if target not in seen:
                    seen.add(target)
                    pending.append((target, addr))
        advance(len(batch))


def _read(store: ChunkStore, batch: list[tuple[bytes, bytes | None]]) -> Iterator[tuple[bytes, bytes | str]]:
    """Each chunk of ``batch`` (address, referrer) with its bytes, or what is wrong with it."""
    try:
        found = store.get_many([Addr(a) for a, _ in batch])
    except NBSError:  # one bad record fails the batch: find which, one by one
        found = None
    for addr, parent in batch:
        if found is not None:
            data = found.get(addr)
        else:
            try:
                data = store.get(addr)
            except NBSError as err:
                yield addr, f"cannot be read: {err}"
                continue
        if data is None:
            yield addr, "is missing" + (f" (referenced by {Addr(parent)})" if parent else " (the root)")
        else:
            yield addr, data

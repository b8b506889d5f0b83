"""Copying the chunks reachable from a value into another store (Go's ``datas.Pull``).

The walk goes level by level from the source hash, as Go's does: the chunks
the sink lacks at one level are read from the source in batches of 4096,
written to the sink in order, and their children are asked of the sink with
one ``has_many``; subtrees the sink already holds are never read.  Progress
reports chunks known and done, and the Snappy-compressed bytes written (Go
estimates those from a 10% sample; here they are counted).  The chunks become
durable with the sink's next commit (the caller moves a dataset).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cramjam

from nbs.addr import Addr
from nbs.chunk_store import ChunkStore
from nbs.noms.codec import Reader
from nbs.noms.decode import decode_value, read_value
from nbs.noms.errors import DecodeError, ValueNotFoundError
from nbs.noms.kind import Kind
from nbs.noms.types import read_type
from nbs.noms.walk import walk_refs

BATCH_SIZE = 1 << 12
_SEQUENCE_KINDS = frozenset({Kind.BLOB, Kind.LIST, Kind.MAP, Kind.SET})


@dataclass
class PullProgress:
    done: int = 0
    known: int = 0
    written_bytes: int = 0


def chunk_refs(data: bytes) -> list[bytes]:
    """The addresses a chunk refers to.

    Blob leaves (most of the bytes of a big store) refer to none, and the
    tuples of a prolly-tree meta node are scanned without building values;
    anything else is decoded and walked.
    """
    if len(data) > 1 and data[0] in _SEQUENCE_KINDS and data[1] != 0:
        return _meta_refs(data)
    if len(data) > 1 and data[0] == Kind.BLOB:
        return []
    return [bytes(r.target) for r in walk_refs(decode_value(data))]


def _meta_refs(data: bytes) -> list[bytes]:
    r = Reader(data, 1)
    r.count()  # level
    refs = []
    for _ in range(r.count()):
        if r.u8() != Kind.REF:
            raise DecodeError("a meta tuple does not start with a ref")
        refs.append(r.hash())
        read_type(r)
        r.count()  # height
        if r.peek() == Kind.HASH:
            r.raw(21)
        else:
            read_value(r, None)
        r.count()  # leaf count
    if not r.at_end():
        raise DecodeError(f"{len(data) - r.pos} bytes of trailing data after a meta node")
    return refs


def pull(source: ChunkStore, sink: ChunkStore, root: bytes,
         progress: Callable[[PullProgress], None] | None = None) -> PullProgress:
    """Copy into ``sink`` every chunk reachable from ``root`` that it lacks; returns the totals."""
    state = PullProgress()
    if not source.has(Addr(root)):
        raise ValueNotFoundError(f"chunk {Addr(root)} is not in the source store")
    if sink.has(Addr(root)):
        return state
    absent = [bytes(root)]
    while absent:
        state.known += len(absent)
        if progress is not None:
            progress(PullProgress(state.done, state.known, state.written_bytes))
        next_level: dict[bytes, None] = {}
        for start in range(0, len(absent), BATCH_SIZE):
            batch = absent[start:start + BATCH_SIZE]
            found = {bytes(k): v for k, v in source.get_many(Addr(a) for a in batch).items()}
            for addr in batch:
                data = found.get(addr)
                if data is None:
                    raise ValueNotFoundError(f"chunk {Addr(addr)} is missing from the source store")
                sink.put(data)
                state.done += 1
                state.written_bytes += len(bytes(cramjam.snappy.compress_raw(data)))
                if progress is not None:
                    progress(PullProgress(state.done, state.known, state.written_bytes))
                for child in chunk_refs(data):
                    next_level.setdefault(child, None)
        missing = sink.has_many(Addr(a) for a in next_level)
        missing_keys = {bytes(a) for a in missing}
        absent = [a for a in next_level if a in missing_keys]
    return state

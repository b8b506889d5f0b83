"""Values of the shared LMDB chunk cache (written by nbsd, read by clients too).

Key: the 20-byte chunk address.  Value::

    [0]       format version (1)
    [1:9]     xxh3-64 of (key || value[9:]), so corruption anywhere is detected
    [9:17]    insertion sequence number (u64, big-endian; FIFO eviction order)
    [17]      n = number of tables recorded
    [18:18+20n] names of tables known to hold the chunk
    [...]     the chunk, uncompressed

The table names let a reader serve a cached chunk only to a store whose view
includes one of those tables: stores sharing one cache never see each other's
chunks, and a store never sees chunks of tables it has not committed or
rebased onto.  Chunks are kept uncompressed because a cache hit is the hot
path; decompression is paid once, when the daemon fills the cache.
"""

from __future__ import annotations

from collections.abc import Set

import xxhash

FORMAT = 1
HEADER = 18
NAME = 20
MAX_TABLES = 8


class CorruptRecordError(Exception):
    """A cached value whose checksum or layout is wrong."""


def _checksum(key: bytes, rest: bytes | memoryview) -> bytes:
    h = xxhash.xxh3_64(key)
    h.update(rest)
    return h.digest()


def encode(key: bytes, seq: int, tables: list[bytes], chunk: bytes) -> bytes:
    rest = b"".join((seq.to_bytes(8, "big"), bytes((len(tables),)), *tables, chunk))
    return bytes((FORMAT,)) + _checksum(key, rest) + rest


def verify(key: bytes, value: bytes | memoryview) -> int:
    """Check a value; returns its table count.  Raises ``CorruptRecordError``."""
    if len(value) < HEADER or value[0] != FORMAT:
        raise CorruptRecordError("bad cache record header")
    n = value[17]
    if n > MAX_TABLES or len(value) < HEADER + NAME * n + 1:
        raise CorruptRecordError("bad cache record table list")
    if _checksum(key, value[9:]) != value[1:9]:
        raise CorruptRecordError("cache record checksum mismatch")
    return n


def tables_of(value: bytes | memoryview, n: int) -> list[bytes]:
    return [bytes(value[HEADER + NAME * i:HEADER + NAME * (i + 1)]) for i in range(n)]


def seq_of(value: bytes | memoryview) -> int:
    return int.from_bytes(value[9:17], "big")


def visible_chunk(key: bytes, value: bytes | memoryview, view: Set[bytes]) -> bytes | None:
    """The chunk if the record is intact and one of its tables is in ``view``; else None.

    Raises ``CorruptRecordError`` for a damaged record.
    """
    n = verify(key, value)
    for i in range(n):
        if bytes(value[HEADER + NAME * i:HEADER + NAME * (i + 1)]) in view:
            return bytes(value[HEADER + NAME * n:])
    return None

"""Values of the shared LMDB chunk cache (written by nbsd, read by clients too).

Key: the 20-byte chunk address.  Value (integers little-endian)::

    [0]          format version (2)
    [1:9]        xxh3-64 of value[9:], seeded with xxh3-64 of the key: damage anywhere shows
    [9:17]       insertion sequence number (FIFO eviction order)
    [17]         n = number of tables recorded
    [18:18+20n]  names of tables known to hold the chunk
    [...]        the chunk, uncompressed

The table names let a reader serve a cached chunk only to a store whose view
includes one of those tables: stores sharing one cache never see each other's
chunks, and a store never sees chunks of tables it has not committed or
rebased onto.  Chunks are kept uncompressed because a cache hit is the hot
path; decompression is paid once, when the daemon fills the cache.  The
layout is read with one ``struct`` call and one hash call per hit.
"""

from __future__ import annotations

import struct
from collections.abc import Set

from xxhash import xxh3_64_intdigest

FORMAT = 2
HEADER = 18
NAME = 20
MAX_TABLES = 8
_HEAD = struct.Struct("<BQQB")


class CorruptRecordError(Exception):
    """A cached value whose checksum or layout is wrong."""


def encode(key: bytes, seq: int, tables: list[bytes], chunk: bytes) -> bytes:
    rest = b"".join((seq.to_bytes(8, "little"), bytes((len(tables),)), *tables, chunk))
    checksum = xxh3_64_intdigest(rest, xxh3_64_intdigest(key))
    return bytes((FORMAT,)) + checksum.to_bytes(8, "little") + rest


def verify(key: bytes, value: bytes | memoryview) -> int:
    """Check a value; returns its table count.  Raises ``CorruptRecordError``."""
    if len(value) < HEADER:
        raise CorruptRecordError("cache record too short")
    version, checksum, _, n = _HEAD.unpack_from(value, 0)
    if version != FORMAT or n > MAX_TABLES or len(value) <= HEADER + NAME * n:
        raise CorruptRecordError("bad cache record header")
    if xxh3_64_intdigest(value[9:], xxh3_64_intdigest(key)) != checksum:
        raise CorruptRecordError("cache record checksum mismatch")
    return int(n)


def tables_of(value: bytes | memoryview, n: int) -> list[bytes]:
    return [bytes(value[HEADER + NAME * i:HEADER + NAME * (i + 1)]) for i in range(n)]


def seq_of(value: bytes | memoryview) -> int:
    return int(_HEAD.unpack_from(value, 0)[2])


def chunk_of(value: bytes | memoryview) -> bytes:
    """The chunk of a record already checked (by ``verify`` or ``visible_chunk``)."""
    return bytes(value[HEADER + NAME * _HEAD.unpack_from(value, 0)[3]:])


def visible_chunk(key: bytes, value: memoryview, view: Set[bytes], prefix: bytes = b"") -> bytes | None:
    """``prefix`` + the chunk if the record is intact and one of its tables is in ``view``; else None.

    ``value`` is a memoryview (LMDB's zero-copy read).  Raises ``CorruptRecordError``.
    This is ``verify`` inlined, because it runs once per cache hit.  The result
    is built with one copy out of the mapped record, so a reply that starts
    with a header (``prefix``) costs no second copy of the chunk.
    """
    if len(value) < HEADER:
        raise CorruptRecordError("cache record too short")
    version, checksum, _, n = _HEAD.unpack_from(value, 0)
    body = HEADER + NAME * n
    if version != FORMAT or n > MAX_TABLES or len(value) <= body:
        raise CorruptRecordError("bad cache record header")
    if xxh3_64_intdigest(value[9:], xxh3_64_intdigest(key)) != checksum:
        raise CorruptRecordError("cache record checksum mismatch")
    if n == 1:
        return prefix + value[body:] if value[HEADER:body].tobytes() in view else None
    for start in range(HEADER, body, NAME):
        if value[start:start + NAME].tobytes() in view:
            return prefix + value[body:]
    return None

"""Tables received in parts from a writer that is not trusted (nbsd's clients).

A client streams a table's records while it encodes them, so the daemon checks
and stores one part while the client encodes the next.  Every record of a
part is checked as it arrives - its CRC, its Snappy stream, and the SHA-512 of
the chunk against the address the client claims for it - before the part
reaches the persister's ``UploadSink``.  The index is then built here from the
verified addresses and lengths, with ``TableWriter``, so no byte of the table
comes from the client unchecked and the bytes are those a direct write builds.

Parts may arrive in any order (the daemon serves them on several threads):
each names its sequence number and the offset of its records in the table, and
at the end the parts, in sequence order, must tile the record region exactly.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from nbs.addr import ADDR_SIZE, Addr
from nbs.chunk_jobs import verify_pieces
from nbs.chunk_source import ChunkSource
from nbs.errors import CorruptTableError, UploadError
from nbs.record import CRC_SIZE, EncodedRecords, RecordBatchError
from nbs.stats import Stats
from nbs.table_index import TableIndex
from nbs.table_writer import MAX_CHUNK_SIZE, TableWriter, WrittenTable

MAX_PARTS = 1 << 16
MAX_UPLOAD_BYTES = 1 << 36  # bounds the offsets a client may name (a file sink would otherwise grow sparse files)
MAX_MEMORY_UPLOAD = 1 << 30  # parts kept in memory (AWS and mem stores) until the end: a client grows them no further


class UploadSink(abc.ABC):
    """Where a persister keeps an upload's verified records until the table is complete."""

    @abc.abstractmethod
    def write(self, offset: int, pieces: Sequence[bytes]) -> None:
        """Store ``pieces``, back to back, at ``offset`` of the record region (calls never overlap in time)."""

    @abc.abstractmethod
    def finish(self, name: Addr, index: TableIndex, tail: bytes, stats: Stats) -> ChunkSource:
        """Append ``tail`` (index and footer) after the records, persist the table durably, return it opened."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop what was written (idempotent)."""


class MemoryUploadSink(UploadSink):
    """Keeps the parts in memory and persists the table whole at the end: for persisters without a cheaper way."""

    def __init__(self, persist: Callable[[WrittenTable, Stats], ChunkSource]) -> None:
        """``persist`` is the persister's ``persist_table``."""
        self._persist = persist
        self._parts: dict[int, Sequence[bytes]] = {}
        self._held = 0

    def write(self, offset: int, pieces: Sequence[bytes]) -> None:
        size = sum(map(len, pieces))
        if self._held + size > MAX_MEMORY_UPLOAD:
            raise UploadError(f"a table held in memory may not pass {MAX_MEMORY_UPLOAD} bytes")
        self._parts[offset] = pieces
        self._held += size

    def finish(self, name: Addr, index: TableIndex, tail: bytes, stats: Stats) -> ChunkSource:
        pieces = [piece for offset in sorted(self._parts) for piece in self._parts[offset]]
        self._parts = {}
        table = WrittenTable(name, (*pieces, tail), index.chunk_count, index.total_uncompressed,
                             index.data_len - CRC_SIZE * index.chunk_count, index.data_len + len(tail), index)
        return self._persist(table, stats)

    def abort(self) -> None:
        self._parts = {}
        self._held = 0


@dataclass(frozen=True)
class VerifiedPart:
    """What the index needs of a part whose records were checked, and where the records lie."""

    offset: int
    size: int
    addrs: list[bytes]
    lengths: list[int]
    uncompressed_len: int


def verify_part(offset: int, pieces: Sequence[bytes], addrs: bytes, lengths: Sequence[int]) -> VerifiedPart:
    """Check every record of ``pieces`` (records back to back, none straddling two pieces) against ``addrs``.

    The records go to the chunk workers (``verify_all``).  Raises
    ``CorruptTableError`` for a record that fails its CRC or Snappy stream,
    claims an impossible size, or does not hash to its address, and
    ``UploadError`` for lengths and addresses that do not describe the pieces.
    """
    count = len(lengths)
    if not count or len(addrs) != ADDR_SIZE * count:
        raise UploadError(f"a part of {count} records needs {ADDR_SIZE * count} bytes of addresses, not {len(addrs)}")
    claimed = [addrs[i:i + ADDR_SIZE] for i in range(0, len(addrs), ADDR_SIZE)]
    ordinal = 0
    split: list[tuple[bytes, Sequence[int]]] = []
    for piece in pieces:
        first, position = ordinal, 0
        while position < len(piece) and ordinal < count:
            length = lengths[ordinal]
            if length <= CRC_SIZE or position + length > len(piece):
                raise UploadError(f"record {ordinal} of {length} bytes does not fit its piece")
            position += length
            ordinal += 1
        if position != len(piece):
            raise UploadError("the record lengths do not tile the part's records")
        split.append((piece, lengths[first:ordinal]))
    if ordinal != count:
        raise UploadError(f"the part holds {ordinal} records, its lengths describe {count}")
    try:
        uncompressed = verify_pieces(split, claimed, MAX_CHUNK_SIZE)
    except RecordBatchError as err:
        raise CorruptTableError("upload", f"record {err.position}: {err}") from err
    return VerifiedPart(offset, sum(lengths), claimed, list(lengths), uncompressed)


class TableUpload:
    """One table being received: verified parts go to ``sink``; ``finish`` checks they tile and persists.

    Thread-safe: parts are verified concurrently, written one at a time.  Any
    failure discards the upload (the sink's records are dropped), so a client
    starts the table again rather than patching it.
    """

    def __init__(self, sink: UploadSink, stats: Stats) -> None:
        self._sink = sink
        self._stats = stats
        self._lock = threading.Lock()
        self._parts: dict[int, VerifiedPart] = {}
        self._claimed: set[int] = set()
        self._state = "open"  # then "finished" or "discarded"

    def add_part(self, seq: int, offset: int, pieces: Sequence[bytes], addrs: bytes, lengths: Sequence[int]) -> None:
        """Verify and store part ``seq``, whose records start at ``offset`` of the record region."""
        size = sum(map(len, pieces))
        with self._lock:
            self._check_open()
            if not 0 <= seq < MAX_PARTS or seq in self._claimed:
                self._discard(f"part {seq} sent twice or out of range (0 to {MAX_PARTS - 1})")
            if not 0 <= offset <= MAX_UPLOAD_BYTES - size:
                self._discard(f"part {seq} at offset {offset} lies outside the {MAX_UPLOAD_BYTES} bytes allowed")
            self._claimed.add(seq)
        try:
            part = verify_part(offset, pieces, addrs, lengths)
        except BaseException:
            self.discard()
            raise
        with self._lock:
            self._check_open()
            before, after = self._parts.get(seq - 1), self._parts.get(seq + 1)
            if (before is not None and before.offset + before.size != offset) or (
                    after is not None and offset + size != after.offset):
                self._discard(f"part {seq} at offset {offset} does not follow its neighbours")
            try:
                self._sink.write(offset, pieces)
            except BaseException:
                self._discard_quietly()
                raise
            self._parts[seq] = part

    def finish(self, name: Addr, count: int) -> ChunkSource:
        """The table, persisted: its parts must tile the records and index to ``name`` with ``count`` chunks."""
        with self._lock:
            self._check_open()
            parts = [self._parts.get(seq) for seq in range(len(self._claimed))]
            writer = TableWriter()
            offset = 0
            for seq, part in enumerate(parts):
                if part is None or part.offset != offset:
                    self._discard(f"part {seq} is missing or not where the parts before it end")
                assert part is not None
                compressed = part.size - CRC_SIZE * len(part.lengths)
                writer.add_encoded(part.addrs, EncodedRecords(b"", part.lengths, compressed, part.uncompressed_len))
                offset += part.size
            table = writer.finish()  # pieces: an empty one per part (the records are in the sink), then the index
            if table.name != name or table.chunk_count != count or table.parsed is None:
                self._discard(f"the parts make table {table.name} of {table.chunk_count} chunks, "
                              f"not {Addr(name)} of {count}")
            assert table.parsed is not None
            try:
                source = self._sink.finish(table.name, table.parsed, table.pieces[-1], self._stats)
            except BaseException:
                self._discard_quietly()
                raise
            self._state = "finished"
            self._parts.clear()
            return source

    def discard(self) -> None:
        """Drop the upload and what it stored (idempotent; a finished table stays)."""
        with self._lock:
            self._discard_quietly()

    def _check_open(self) -> None:
        if self._state != "open":
            raise UploadError(f"the upload is {self._state}")

    def _discard(self, reason: str) -> NoReturn:
        """Discard (lock held) and raise ``UploadError`` for ``reason``."""
        self._discard_quietly()
        raise UploadError(reason)

    def _discard_quietly(self) -> None:
        if self._state == "open":
            self._state = "discarded"
            self._parts.clear()
            self._sink.abort()

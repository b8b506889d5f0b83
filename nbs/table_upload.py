"""Tables received in parts from a writer that is not trusted (nbsd's clients).

A part comes in one of two forms, and one upload takes one form only:

- **chunks** (``add_chunks``, what ``DaemonStore`` sends): the chunks
  themselves.  The receiver hashes and encodes them (one pass on the chunk
  workers), so every address is its own computation and the client does no
  per-chunk work at all.  A chunk already in the upload, or held by the store,
  adds no record, as a memtable's persist would skip it.  Parts are placed in
  sequence order, each after the one before it, whatever thread serves it.
- **records** (``add_part``, kept for clients of earlier versions): records the
  client encoded.  Each is checked as it arrives - its CRC, its Snappy stream,
  and the SHA-512 of the chunk against the address the client claims for it.
  Each part names its offset; at the end the parts, in sequence order, must
  tile the record region exactly.

Checked records reach the persister's ``UploadSink``.  The index is built here
from the addresses and lengths, with ``TableWriter``, so no byte of the table
comes from the client unchecked and the bytes are those a direct write builds.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from typing import NoReturn

from nbs.addr import ADDR_SIZE, EMPTY_ADDR, Addr
from nbs.chunk_jobs import hash_encode_all, verify_pieces
from nbs.chunk_source import ChunkSource, EmptyChunkSource
from nbs.errors import CorruptTableError, UploadError
from nbs.record import CRC_SIZE, EncodedRecords, RecordBatchError
from nbs.stats import Stats
from nbs.table_index import TableIndex
from nbs.table_writer import MAX_CHUNK_SIZE, TableWriter, WrittenTable
from nbs.upload_memory import UPLOAD_MEMORY

MAX_PARTS = 1 << 16
MAX_UPLOAD_BYTES = 1 << 36  # bounds the offsets a client may name (a file sink would otherwise grow sparse files)
MAX_MEMORY_UPLOAD = 1 << 30  # parts kept in memory (AWS and mem stores) until the end: a client grows them no further
TURN_WAIT_S = 30.0  # the most a part of chunks waits for the part before it (a client sends them in order)


class UploadSink(abc.ABC):
    """Where a persister keeps an upload's verified records until the table is complete."""

    @abc.abstractmethod
    def write(self, offset: int, pieces: Sequence[bytes]) -> None:
        """Store ``pieces``, back to back, at ``offset`` of the record region.

        Calls may overlap in time (never in the region), and ``abort`` may
        come during one: a write after ``abort`` raises ``UploadError``.
        """

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
        self._lock = threading.Lock()
        self._parts: dict[int, Sequence[bytes]] = {}
        self._held = 0
        self._aborted = False

    def write(self, offset: int, pieces: Sequence[bytes]) -> None:
        size = sum(map(len, pieces))
        with self._lock:
            if self._aborted:
                raise UploadError("the upload was discarded")
            if self._held + size > MAX_MEMORY_UPLOAD:
                raise UploadError(f"a table held in memory may not pass {MAX_MEMORY_UPLOAD} bytes")
            UPLOAD_MEMORY.reserve(size, self._held)
            self._parts[offset] = pieces
            self._held += size

    def finish(self, name: Addr, index: TableIndex, tail: bytes, stats: Stats) -> ChunkSource:
        pieces = [piece for offset in sorted(self._parts) for piece in self._parts[offset]]
        self._parts = {}
        table = WrittenTable(name, (*pieces, tail), index.chunk_count, index.total_uncompressed,
                             index.data_len - CRC_SIZE * index.chunk_count, index.data_len + len(tail), index)
        try:
            return self._persist(table, stats)
        finally:
            self._release()

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            self._parts = {}
            self._release()

    def _release(self) -> None:
        """Give back what the upload counted against ``UPLOAD_MEMORY`` (once: its parts are gone)."""
        UPLOAD_MEMORY.release(self._held)
        self._held = 0


def error_after(what: str, cause: BaseException | None) -> UploadError:
    """The error for a part of an upload that ended early: ``what`` and its cause, and for an upload error, its
    type (a part in flight behind a refused one must not hide why: a client backs off from a busy daemon)."""
    kind = type(cause) if isinstance(cause, UploadError) else UploadError
    return kind(what if cause is None else f"{what}: {cause}")


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

    Thread-safe: parts are verified concurrently; parts of chunks take their
    places in turn and are written outside the lock (the next part's hashing
    need not wait for a write), parts of records one at a time.  Any
    failure discards the upload (the sink's records are dropped), so a client
    starts the table again rather than patching it.
    """

    def __init__(self, sink: UploadSink, stats: Stats, absent: Callable[[Sequence[bytes]], Set[bytes]]) -> None:
        """``absent`` says which addresses the store lacks (parts of chunks store only those)."""
        self._sink = sink
        self._stats = stats
        self._absent = absent
        self._lock = threading.Lock()
        self._turn = threading.Condition(self._lock)
        self._parts: dict[int, VerifiedPart] = {}
        self._claimed: set[int] = set()
        self._form = ""  # the form of the first part: "records" or "chunks"
        self._seen: set[bytes] = set()  # parts of chunks: the addresses stored so far
        self._end = 0  # parts of chunks: where the next part's records go
        self._writing = 0  # parts of chunks placed whose records are still being written
        self._state = "open"  # then "finished" or "discarded"
        self._cause: BaseException | None = None  # why it was discarded, told to the parts that come after

    def add_chunks(self, seq: int, data: bytes | memoryview, lengths: Sequence[int]) -> list[bytes]:
        """Hash and encode part ``seq``, chunks of ``lengths`` back to back in ``data``, and store the records of
        those neither stored before nor held by the store, after part ``seq - 1``'s; the addresses of all.

        Parts are hashed and encoded concurrently and placed in sequence order:
        a part waits up to ``TURN_WAIT_S`` for the one before it.
        """
        count = len(lengths)
        if not count or min(lengths) < 1 or max(lengths) > MAX_CHUNK_SIZE or sum(lengths) != len(data):
            raise UploadError(f"a part of {count} chunks needs lengths of 1 to {MAX_CHUNK_SIZE} bytes "
                              f"adding up to its {len(data)} bytes")
        self._claim(seq, 0, "chunks")
        try:
            batches = list(hash_encode_all(data, lengths))
            addrs = [addr for _, batch_addrs, _ in batches for addr in batch_addrs]
            absent = self._absent(addrs)
        except BaseException as err:
            self.discard(err)
            raise
        with self._turn:
            if not self._turn.wait_for(lambda: self._state != "open" or len(self._parts) == seq, TURN_WAIT_S):
                self._discard(f"part {seq} waited {TURN_WAIT_S:g}s for part {len(self._parts)}")
            self._check_open()
            pieces, part = self._novel_records(batches, lengths, absent)
            self._parts[seq] = part
            self._end += part.size
            self._writing += 1
            self._turn.notify_all()
        try:
            if pieces:
                self._sink.write(part.offset, pieces)
        except BaseException as err:
            self.discard(err)
            raise
        finally:
            with self._turn:
                self._writing -= 1
                self._turn.notify_all()
        return addrs

    def _novel_records(self, batches: Sequence[tuple[int, list[bytes], EncodedRecords]], sizes: Sequence[int],
                       absent: Set[bytes]) -> tuple[list[bytes], VerifiedPart]:
        """The records of a part's chunks (of ``sizes`` bytes) to store (lock held): those absent from the store
        and not stored yet."""
        pieces: list[bytes] = []
        addrs: list[bytes] = []
        lengths: list[int] = []
        uncompressed = 0
        seen = self._seen
        for start, batch_addrs, records in batches:
            if all(a in absent and a not in seen for a in batch_addrs) and len(set(batch_addrs)) == len(batch_addrs):
                pieces.append(records.data)
                addrs.extend(batch_addrs)
                lengths.extend(records.lengths)
                seen.update(batch_addrs)
                uncompressed += records.uncompressed_len
                continue
            view, at = memoryview(records.data), 0
            for addr, length, size in zip(batch_addrs, records.lengths, sizes[start:start + len(batch_addrs)]):
                if addr in absent and addr not in seen:
                    pieces.append(bytes(view[at:at + length]))  # rare: a batch with a stored chunk
                    addrs.append(addr)
                    lengths.append(length)
                    seen.add(addr)
                    uncompressed += size
                at += length
        return pieces, VerifiedPart(self._end, sum(lengths), addrs, lengths, uncompressed)

    def add_part(self, seq: int, offset: int, pieces: Sequence[bytes], addrs: bytes, lengths: Sequence[int]) -> None:
        """Verify and store part ``seq`` of records, which start at ``offset`` of the record region."""
        size = sum(map(len, pieces))
        self._claim(seq, offset, "records", size)
        try:
            part = verify_part(offset, pieces, addrs, lengths)
        except BaseException as err:
            self.discard(err)
            raise
        with self._lock:
            self._check_open()
            before, after = self._parts.get(seq - 1), self._parts.get(seq + 1)
            if (before is not None and before.offset + before.size != offset) or (
                    after is not None and offset + size != after.offset):
                self._discard(f"part {seq} at offset {offset} does not follow its neighbours")
            try:
                self._sink.write(offset, pieces)
            except BaseException as err:
                self._discard_quietly(err)
                raise
            self._parts[seq] = part

    def _claim(self, seq: int, offset: int, form: str, size: int = 0) -> None:
        """Take part number ``seq`` of form ``form`` (records: ``size`` bytes at ``offset``), or discard the upload."""
        with self._lock:
            self._check_open()
            if self._form not in ("", form):
                self._discard(f"part {seq} holds {form}, the parts before it {self._form}")
            self._form = form
            if not 0 <= seq < MAX_PARTS or seq in self._claimed:
                self._discard(f"part {seq} sent twice or out of range (0 to {MAX_PARTS - 1})")
            if not 0 <= offset <= MAX_UPLOAD_BYTES - size:
                self._discard(f"part {seq} at offset {offset} lies outside the {MAX_UPLOAD_BYTES} bytes allowed")
            self._claimed.add(seq)

    def finish(self, name: Addr | None = None, count: int | None = None) -> ChunkSource:
        """The table, persisted: its parts must tile the records and index to ``name`` with ``count`` chunks.

        Without ``name`` and ``count`` (parts of chunks, whose addresses were computed here) the table is
        whatever the parts make: none (an empty source) when every chunk was already stored.
        """
        with self._lock:
            if not self._turn.wait_for(lambda: self._state != "open" or not self._writing, TURN_WAIT_S):
                self._discard(f"{self._writing} parts were still being written after {TURN_WAIT_S:g}s")
            self._check_open()
            parts = [self._parts.get(seq) for seq in range(len(self._claimed))]
            writer = TableWriter()
            offset = 0
            for seq, part in enumerate(parts):
                if part is None or part.offset != offset:
                    self._discard(f"part {seq} is missing or not where the parts before it end")
                assert part is not None
                if part.lengths:
                    compressed = part.size - CRC_SIZE * len(part.lengths)
                    writer.add_encoded(part.addrs, EncodedRecords(b"", part.lengths, compressed,
                                                                  part.uncompressed_len))
                offset += part.size
            if name is None and not len(writer):
                self._state = "finished"
                self._parts.clear()
                self._sink.abort()
                return EmptyChunkSource()
            table = writer.finish()  # pieces: an empty one per part (the records are in the sink), then the index
            if table.parsed is None or (name is not None and (table.name != name or table.chunk_count != count)):
                self._discard(f"the parts make table {table.name} of {table.chunk_count} chunks, "
                              f"not {Addr(name or EMPTY_ADDR)} of {count}")
            assert table.parsed is not None
            try:
                source = self._sink.finish(table.name, table.parsed, table.pieces[-1], self._stats)
            except BaseException as err:
                self._discard_quietly(err)
                raise
            self._state = "finished"
            self._parts.clear()
            return source

    def discard(self, cause: BaseException | None = None) -> None:
        """Drop the upload and what it stored (idempotent; a finished table stays)."""
        with self._lock:
            self._discard_quietly(cause)

    def _check_open(self) -> None:
        """Raise unless open; after a discard, with its cause and, for an upload error, its type: a part in
        flight behind a refused one must not hide why (a client backs off from a busy daemon, not a bug)."""
        if self._state != "open":
            raise error_after(f"the upload is {self._state}", self._cause)

    def _discard(self, reason: str) -> NoReturn:
        """Discard (lock held) and raise ``UploadError`` for ``reason``."""
        error = UploadError(reason)
        self._discard_quietly(error)
        raise error

    def _discard_quietly(self, cause: BaseException | None = None) -> None:
        """Discard (lock held); parts waiting for their turn wake to find the upload gone, and why."""
        if self._state == "open":
            self._state = "discarded"
            self._cause = cause
            self._parts.clear()
            self._sink.abort()
            self._turn.notify_all()

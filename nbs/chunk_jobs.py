"""Batch operations on chunks, run by the chunk workers (or here): hash, encode (or both at once), verify, decode.

Each job does exactly what its in-thread form does (``addresses_of``,
``encode_records``, ``decode_records``, plus a hash check to verify), so the
bytes of a table never depend on where its records were encoded, nor a
chunk read on where it was decoded.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Generator, Sequence
from typing import TypeVar

from nbs import chunk_worker as wire
from nbs.addr import ADDR_SIZE, Addr, addresses_of, compute_addr, digests_of, unpack_addrs
from nbs.chunk_workers import ChunkWorker, Job, batches, run_jobs
from nbs.record import EncodedRecords, RecordBatchError, decode_records, encode_records

R = TypeVar("R")


class _ChunksJob(Job[R]):
    """A job on a batch of chunks (``lengths`` their lengths)."""

    def __init__(self, chunks: Sequence[bytes], lengths: Sequence[int]) -> None:
        super().__init__(sum(lengths))
        self.chunks, self.lengths = chunks, lengths


class HashJob(_ChunksJob[list[Addr]]):
    def send(self, worker: ChunkWorker) -> None:
        worker.send(wire.HASH, self.chunks, self.lengths, ADDR_SIZE * len(self.chunks))

    def receive(self, worker: ChunkWorker) -> list[Addr]:
        return unpack_addrs(worker.receive()[0])

    def run_here(self) -> list[Addr]:
        return addresses_of(self.chunks)


class EncodeJob(_ChunksJob[EncodedRecords]):
    def send(self, worker: ChunkWorker) -> None:
        worker.send(wire.ENCODE, self.chunks, self.lengths, 4 * len(self.chunks))

    def receive(self, worker: ChunkWorker) -> EncodedRecords:
        answer, records = worker.receive()
        return _records(answer, records, self.input_size)

    def run_here(self) -> EncodedRecords:
        return encode_records(self.chunks)


class HashEncodeJob(Job[tuple[list[bytes], EncodedRecords]]):
    """Chunks laid back to back in ``data``: their addresses and their records, from one pass over them.

    The addresses are plain ``bytes``, as ``digests_of`` gives them: nbsd receives every chunk written
    through it this way, and an ``Addr`` per chunk (tracked by the garbage collector) cost it 13-20 ms
    of CPU per 25,000 where the same loop alone takes 7-10 ms.

    ``data`` may be a client's shared memory that the client can still write
    (nbsd's part memory): both ways copy the chunks once, into the worker's
    memory or as ``bytes``, before hashing, so a record always holds the bytes
    its address was computed from.
    """

    def __init__(self, data: memoryview, lengths: Sequence[int]) -> None:
        super().__init__(len(data))
        self.data, self.lengths = data, lengths

    def send(self, worker: ChunkWorker) -> None:
        worker.send(wire.HASH_ENCODE, [self.data], self.lengths, (ADDR_SIZE + 4) * len(self.lengths))

    def receive(self, worker: ChunkWorker) -> tuple[list[bytes], EncodedRecords]:
        answer, records = worker.receive()
        split = ADDR_SIZE * len(self.lengths)
        digests = answer[:split]
        return ([digests[i:i + ADDR_SIZE] for i in range(0, split, ADDR_SIZE)],
                _records(answer[split:], records, self.input_size))

    def run_here(self) -> tuple[list[bytes], EncodedRecords]:
        chunks, at = [], 0
        for length in self.lengths:
            chunks.append(bytes(self.data[at:at + length]))
            at += length
        return digests_of(chunks), encode_records(chunks)


def _records(answer: bytes, records: memoryview, input_size: int) -> EncodedRecords:
    """The records a worker wrote into its output region, given its answer (their lengths)."""
    lengths = list(struct.unpack(f"<{len(answer) // 4}I", answer))
    size = sum(lengths)
    return EncodedRecords(bytes(records[:size]), lengths, size - wire.CRC_SIZE * len(lengths), input_size)


class VerifyJob(Job[int]):
    """Records laid back to back from ``start`` in ``data``, each to hash to its given address."""

    def __init__(self, data: memoryview, start: int, lengths: Sequence[int], addrs: Sequence[bytes],
                 max_len: int) -> None:
        super().__init__(sum(lengths))
        self.data, self.start, self.lengths, self.addrs, self.max_len = data, start, lengths, addrs, max_len

    def send(self, worker: ChunkWorker) -> None:
        records = self.data[self.start:self.start + self.input_size]
        worker.send(wire.VERIFY, [records], self.lengths, wire.VERDICT.size,
                    extra=struct.pack("<Q", self.max_len) + b"".join(self.addrs))

    def receive(self, worker: ChunkWorker) -> int:
        position, problem, total = wire.VERDICT.unpack(worker.receive()[0])
        if problem == wire.OK:
            return int(total)
        raise RecordBatchError(position, _PROBLEMS.get(problem, "bad record").format(size=total,
                                                                                     limit=self.max_len))

    def run_here(self) -> int:
        spans, at = [], self.start
        for length in self.lengths:
            spans.append((at, length))
            at += length
        chunks = decode_records(self.data, spans, self.max_len)
        for position, (chunk, addr) in enumerate(zip(chunks, self.addrs)):
            if compute_addr(chunk) != addr:
                raise RecordBatchError(position, "does not hash to its address")
        return sum(map(len, chunks))


class DecodeJob(Job[list[bytes]]):
    """Records read from a table: their chunks.

    ``reads`` are the ``(offset, length)`` ranges of the table to read, laid
    back to back; ``starts`` and ``lengths`` place each record in what they
    make.  They are read when the job is sent, by ``read_into`` (``(offset,
    buffer)``), straight into the worker's input memory, or by ``read``
    (``(offset, length)``) when it runs here.  Chunks that do not fit in the
    worker's output memory (a batch that decompresses to more than it holds)
    are decoded here.
    """

    def __init__(self, read: Callable[[int, int], bytes], read_into: Callable[[int, memoryview], None],
                 reads: list[tuple[int, int]], starts: Sequence[int], lengths: Sequence[int], max_len: int) -> None:
        super().__init__(sum(length for _, length in reads))
        self.read, self.read_into, self.reads, self.max_len = read, read_into, reads, max_len
        self.starts, self.lengths = starts, lengths

    def send(self, worker: ChunkWorker) -> None:
        count = len(self.lengths)
        worker.send_filled(wire.DECODE, self._fill, self.lengths, wire.VERDICT.size + 4 * count,
                           extra=struct.pack(f"<Q{count}I", self.max_len, *self.starts))

    def _fill(self, buffer: memoryview) -> int:
        at = 0
        for offset, length in self.reads:
            self.read_into(offset, buffer[at:at + length])
            at += length
        return at

    def receive(self, worker: ChunkWorker) -> list[bytes]:
        answer, output = worker.receive()
        position, problem, total = wire.VERDICT.unpack_from(answer)
        if problem not in (wire.OK, wire.NO_ROOM):
            raise RecordBatchError(position, _PROBLEMS.get(problem, "bad record").format(size=total,
                                                                                         limit=self.max_len))
        done = len(self.lengths) if problem == wire.OK else position
        ends = list(itertools.accumulate(struct.unpack_from(f"<{done}I", answer, wire.VERDICT.size)))
        chunks = [bytes(output[start:end]) for start, end in zip([0, *ends], ends)]
        if problem == wire.OK:
            return chunks
        try:
            return chunks + self._decode(position)
        except RecordBatchError as err:
            raise RecordBatchError(position + err.position, str(err)) from err

    def run_here(self) -> list[bytes]:
        return self._decode(0)

    def _decode(self, first: int) -> list[bytes]:
        """Decode the records from ``first`` on here, read as ``bytes`` (a buffer to read into would be zeroed)."""
        pieces = [self.read(offset, length) for offset, length in self.reads]
        return decode_records(pieces[0] if len(pieces) == 1 else b"".join(pieces),
                              list(zip(self.starts[first:], self.lengths[first:])), self.max_len)


_PROBLEMS = {
    wire.BAD_RECORD: "CRC-32C mismatch or too short",
    wire.BAD_SNAPPY: "bad Snappy data",
    wire.BAD_SIZE: "record claims {size} uncompressed bytes (limit {limit})",
    wire.BAD_ADDRESS: "does not hash to its address",
}



def hash_all(chunks: Sequence[bytes]) -> list[Addr]:
    """``addresses_of(chunks)``, batches hashed by the chunk workers."""
    lengths = list(map(len, chunks))
    jobs = [HashJob(chunks[start:end], lengths[start:end]) for start, end in batches(lengths)]
    return [addr for batch in run_jobs(jobs) for addr in batch]


def encode_all(chunks: Sequence[bytes]) -> Generator[tuple[int, EncodedRecords], None, None]:
    """``encode_records`` of consecutive batches of ``chunks``, in order, each with the index of its first chunk.

    Batches are encoded a few ahead of the consumer, no more: a slow
    consumer (a file or an upload) bounds the encoded bytes in flight.
    """
    lengths = list(map(len, chunks))
    spans = batches(lengths)
    jobs = [EncodeJob(chunks[start:end], lengths[start:end]) for start, end in spans]
    for (start, _), records in zip(spans, run_jobs(jobs)):
        yield start, records


def hash_encode_all(data: bytes | memoryview, lengths: Sequence[int]
                    ) -> Generator[tuple[int, list[bytes], EncodedRecords], None, None]:
    """The addresses and records of the chunks laid back to back in ``data``, batch by batch, in order, each batch
    with the index of its first chunk (``hash_all`` and ``encode_all`` in one pass)."""
    view, offsets = memoryview(data), list(itertools.accumulate(lengths, initial=0))
    spans = batches(lengths)
    jobs = [HashEncodeJob(view[offsets[start]:offsets[end]], lengths[start:end]) for start, end in spans]
    for (start, _), (addrs, records) in zip(spans, run_jobs(jobs)):
        yield start, addrs, records


def verify_all(data: bytes | memoryview, lengths: Sequence[int], addrs: Sequence[bytes], max_len: int) -> int:
    """The bytes the records back to back in ``data`` hold, once each has passed its CRC and hashes to its address.

    Raises ``RecordBatchError`` naming the position of the first bad record.
    """
    return verify_pieces([(data, lengths)], addrs, max_len)


def verify_pieces(pieces: Sequence[tuple[bytes | memoryview, Sequence[int]]], addrs: Sequence[bytes],
                  max_len: int) -> int:
    """``verify_all`` of records laid back to back in several buffers, each with the lengths of its records.

    ``addrs`` runs on across the pieces.  Every batch of every piece goes to
    the workers at once, so a part made of many small pieces still uses them all.
    """
    jobs: list[VerifyJob] = []
    firsts: list[int] = []
    ordinal = 0
    for data, lengths in pieces:
        view, at, offsets = memoryview(data), 0, []
        for length in lengths:
            offsets.append(at)
            at += length
        for start, end in batches(lengths):
            jobs.append(VerifyJob(view, offsets[start], lengths[start:end],
                                  addrs[ordinal + start:ordinal + end], max_len))
            firsts.append(ordinal + start)
        ordinal += len(lengths)
    results = run_jobs(jobs)
    total = 0
    for first in firsts:
        try:
            total += next(results)
        except RecordBatchError as err:
            raise RecordBatchError(first + err.position, str(err)) from err
    return total

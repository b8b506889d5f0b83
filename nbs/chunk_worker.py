"""A chunk worker process: hashes, encodes (or both), verifies and decodes batches of chunks for its parent.

Threads cannot share this work on CPython: each 4 KiB chunk costs a few
microseconds in C, and the GIL changing hands around every call costs as much
as the work itself (two threads hash at 1.1x one thread, and decompress at
0.6x).  A worker process works through a whole batch without a GIL to share.

The chunks travel through shared memory, not a pipe: the parent writes a
batch into the worker's input ``memfd`` and sends only the request (an
operation, the chunk lengths and, to verify, the expected addresses; to
decode, each record's offset) on the worker's stdin; the worker writes
encoded records into its output ``memfd`` and answers on stdout with
addresses, record lengths or a verdict.  So a
chunk is copied once into the worker and a record once out of it.  To
decode, the parent reads a table's records straight into the input slot and
the worker writes the chunks into its output slot.

This file runs as a script (``python nbs/chunk_worker.py FD_IN FD_OUT
IN_STRIDE OUT_STRIDE``: each memfd holds two slots of its stride, so two
batches can be in flight),
so it imports nothing from ``nbs`` (importing the package takes 140 ms);
the parent imports it only for the protocol below.  The worker exits when
its stdin closes, which happens when the parent closes it or dies.
"""

from __future__ import annotations

import hashlib
import mmap
import struct
import sys
from typing import BinaryIO

import cramjam
import crc32c

HASH, ENCODE, VERIFY, HASH_ENCODE, DECODE = 1, 2, 3, 4, 5
REQUEST = struct.Struct("<BBII")  # operation, slot, chunk count, bytes of input in the slot
VERDICT = struct.Struct("<iBQ")  # first bad position (-1: none), its problem, total uncompressed bytes
OK, BAD_RECORD, BAD_SNAPPY, BAD_SIZE, BAD_ADDRESS, NO_ROOM = range(6)
ADDR_SIZE = 20
CRC_SIZE = 4
MAX_EXPANSION = 22  # nbs.record's: a record claiming more than 22x its size lies


def max_encoded_len(length: int) -> int:
    """The most bytes a record of a chunk of ``length`` bytes can take (Snappy's bound plus the CRC)."""
    return 32 + length + length // 6 + CRC_SIZE


def read_exactly(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes from ``stream``; fewer only at its end."""
    data = stream.read(size)
    while data and len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


def hash_chunks(data: memoryview, lengths: tuple[int, ...]) -> bytes:
    """The 20-byte addresses of the chunks laid back to back in ``data``."""
    sha512, out, at = hashlib.sha512, [], 0
    for length in lengths:
        out.append(sha512(data[at:at + length]).digest()[:ADDR_SIZE])
        at += length
    return b"".join(out)


def encode_chunks(data: memoryview, lengths: tuple[int, ...], records: memoryview) -> bytes:
    """Write each chunk's record (Snappy block, CRC-32C) into ``records``; their lengths."""
    compress, crc = cramjam.snappy.compress_raw_into, crc32c.crc32c
    sizes, at, out = [], 0, 0
    for length in lengths:
        written = compress(data[at:at + length], records[out:out + max_encoded_len(length)])
        records[out + written:out + written + CRC_SIZE] = crc(records[out:out + written]).to_bytes(CRC_SIZE, "big")
        sizes.append(written + CRC_SIZE)
        at += length
        out += written + CRC_SIZE
    return struct.pack(f"<{len(sizes)}I", *sizes)


def hash_and_encode_chunks(data: memoryview, lengths: tuple[int, ...], records: memoryview) -> bytes:
    """``hash_chunks`` then ``encode_chunks`` of the same batch, in one answer: the addresses, then the lengths."""
    return hash_chunks(data, lengths) + encode_chunks(data, lengths, records)


def verify_records(data: memoryview, lengths: tuple[int, ...], addrs: bytes, max_len: int) -> bytes:
    """Check each record laid back to back in ``data``: CRC, Snappy, size, and that it hashes to its address."""
    crc, size_of, decompress = crc32c.crc32c, cramjam.snappy.decompress_raw_len, cramjam.snappy.decompress_raw
    sha512, at, total = hashlib.sha512, 0, 0
    for position, length in enumerate(lengths):
        end = at + length - CRC_SIZE
        compressed = data[at:end]
        if length <= CRC_SIZE or crc(compressed) != int.from_bytes(data[end:end + CRC_SIZE], "big"):
            return VERDICT.pack(position, BAD_RECORD, 0)
        try:
            size = size_of(compressed)
            if size == 0 or size > max_len or size > MAX_EXPANSION * (length - CRC_SIZE):
                return VERDICT.pack(position, BAD_SIZE, size)
            chunk = decompress(compressed)
        except cramjam.DecompressionError:
            return VERDICT.pack(position, BAD_SNAPPY, 0)
        if sha512(chunk).digest()[:ADDR_SIZE] != addrs[position * ADDR_SIZE:(position + 1) * ADDR_SIZE]:
            return VERDICT.pack(position, BAD_ADDRESS, 0)
        total += size
        at += length
    return VERDICT.pack(-1, OK, total)


def decode_records(data: memoryview, offsets: tuple[int, ...], lengths: tuple[int, ...], max_len: int,
                   chunks: memoryview) -> bytes:
    """Check and decompress the record at each offset of ``data`` into ``chunks``, back to back.

    The answer is a verdict, then each chunk's length (zero where none was
    written).  A chunk that does not fit in ``chunks`` ends the batch with
    ``NO_ROOM`` at its position: the parent decodes the rest itself.
    """
    crc, size_of, decompress = crc32c.crc32c, cramjam.snappy.decompress_raw_len, cramjam.snappy.decompress_raw_into
    sizes = [0] * len(lengths)
    out = 0

    def answer(position: int, problem: int, size: int) -> bytes:
        return VERDICT.pack(position, problem, size) + struct.pack(f"<{len(sizes)}I", *sizes)

    for position, (at, length) in enumerate(zip(offsets, lengths)):
        end = at + length - CRC_SIZE
        compressed = data[at:end]
        if length <= CRC_SIZE or crc(compressed) != int.from_bytes(data[end:end + CRC_SIZE], "big"):
            return answer(position, BAD_RECORD, 0)
        try:
            size = size_of(compressed)
            if size == 0 or size > max_len or size > MAX_EXPANSION * (length - CRC_SIZE):
                return answer(position, BAD_SIZE, size)
            if out + size > len(chunks):
                return answer(position, NO_ROOM, out)
            if decompress(compressed, chunks[out:out + size]) != size:
                return answer(position, BAD_SNAPPY, 0)
        except cramjam.DecompressionError:
            return answer(position, BAD_SNAPPY, 0)
        sizes[position] = size
        out += size
    return answer(-1, OK, out)


def serve(requests: BinaryIO, replies: BinaryIO, fd_in: int, fd_out: int, in_stride: int, out_stride: int) -> None:
    """Answer requests until ``requests`` ends."""
    inputs = memoryview(mmap.mmap(fd_in, 2 * in_stride))
    outputs = memoryview(mmap.mmap(fd_out, 2 * out_stride))
    while True:
        header = read_exactly(requests, REQUEST.size)
        if len(header) < REQUEST.size:
            return
        op, slot, count, size = REQUEST.unpack(header)
        lengths = struct.unpack(f"<{count}I", read_exactly(requests, 4 * count))
        data = inputs[slot * in_stride:slot * in_stride + size]
        if op == HASH:
            reply = hash_chunks(data, lengths)
        elif op == ENCODE:
            reply = encode_chunks(data, lengths, outputs[slot * out_stride:(slot + 1) * out_stride])
        elif op == HASH_ENCODE:
            reply = hash_and_encode_chunks(data, lengths, outputs[slot * out_stride:(slot + 1) * out_stride])
        elif op == VERIFY:
            (max_len,) = struct.unpack("<Q", read_exactly(requests, 8))
            reply = verify_records(data, lengths, read_exactly(requests, ADDR_SIZE * count), max_len)
        elif op == DECODE:
            (max_len,) = struct.unpack("<Q", read_exactly(requests, 8))
            offsets = struct.unpack(f"<{count}I", read_exactly(requests, 4 * count))
            reply = decode_records(data, offsets, lengths, max_len, outputs[slot * out_stride:(slot + 1) * out_stride])
        else:
            return
        replies.write(reply)
        replies.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer, *map(int, sys.argv[1:5]))

"""Chunk records: Snappy block-format bytes followed by their CRC-32C.

``record = snappy_block(chunk) || uint32_be(crc32c(snappy_block(chunk)))``.
The CRC covers only the compressed bytes.  Every table backend stores records
this way, so encoding and checking live here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import cramjam
import crc32c

CRC_SIZE = 4
# Snappy's densest element makes 64 bytes of 3: a record claiming more than 22x its size lies (and
# decompressing it would allocate what it claims).
MAX_EXPANSION = 22


class RecordError(Exception):
    """A record whose CRC or Snappy stream is wrong; table readers add the table name."""


class RecordBatchError(RecordError):
    """A bad record in a batch, at ``position`` in it (readers name its chunk)."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position


def compress(chunk: bytes) -> bytes:
    """Snappy block format (raw, unframed) of a chunk."""
    return bytes(cramjam.snappy.compress_raw(chunk))


def encode_record(chunk: bytes) -> tuple[bytes, int]:
    """The stored record of ``chunk`` and the length of its compressed part."""
    compressed = compress(chunk)
    return compressed + crc32c.crc32c(compressed).to_bytes(CRC_SIZE, "big"), len(compressed)


_compress = cramjam.snappy.compress_raw
_crc32c = crc32c.crc32c
_decompressed_len = cramjam.snappy.decompress_raw_len
_decompress = cramjam.snappy.decompress_raw
_decompress_into = cramjam.snappy.decompress_raw_into


def decode_record(record: bytes | memoryview, max_len: int) -> bytes:
    """Check and decompress one record; ``max_len`` bounds the claimed chunk size.

    This runs once per chunk read, so it avoids what costs here: attribute
    lookups and a second copy of the chunk (``Buffer.read`` hands over bytes).
    """
    end = len(record) - CRC_SIZE
    if end <= 0:
        raise RecordError(f"record of {len(record)} bytes is too short")
    compressed = record[:end]
    if _crc32c(compressed) != int.from_bytes(record[end:], "big"):
        raise RecordError("CRC-32C mismatch")
    try:
        size = _decompressed_len(compressed)
        if size > min(max_len, MAX_EXPANSION * end) or size == 0:
            raise RecordError(f"record claims {size} uncompressed bytes (limit {max_len})")
        return _decompress(compressed).read()
    except cramjam.DecompressionError as err:
        raise RecordError(f"bad Snappy data: {err}") from err


class EncodedRecords(NamedTuple):
    """Consecutive records of a batch of chunks, and what a table index needs of them."""

    data: bytes
    lengths: list[int]
    compressed_len: int
    uncompressed_len: int


def encode_records(chunks: Sequence[bytes]) -> EncodedRecords:
    """The records of ``chunks`` back to back; the same bytes as ``encode_record`` of each, joined.

    One call per batch keeps the per-chunk work to the C calls (which release
    the GIL) and two list appends: no intermediate copy of a record.
    """
    compress, crc = _compress, _crc32c
    pieces: list[bytes | cramjam.Buffer] = []
    lengths: list[int] = []
    piece, length = pieces.append, lengths.append
    for chunk in chunks:
        compressed = compress(chunk)
        piece(compressed)
        piece(crc(compressed).to_bytes(CRC_SIZE, "big"))
        length(len(compressed) + CRC_SIZE)
    return EncodedRecords(b"".join(pieces), lengths, sum(lengths) - CRC_SIZE * len(lengths), sum(map(len, chunks)))


def decode_records(data: bytes | memoryview, spans: Sequence[tuple[int, int]], max_len: int) -> list[bytes]:
    """``decode_record`` of each ``(offset, length)`` span of ``data``, with the loop kept in one frame.

    Each chunk is decompressed into one scratch buffer and copied out as
    ``bytes``: the binding's own output (a ``Buffer``, then ``read()``) costs
    an allocation and an object more per chunk, 7-9 ms per 100 MB of 4 KiB
    chunks (12% of a ``get_many`` whose memory is already mapped; page faults
    hide it when every chunk lands on a fresh page).  A failure raises
    ``RecordBatchError`` naming the position of the bad span.
    """
    view = memoryview(data)
    crc, decompressed_len, decompress_into = _crc32c, _decompressed_len, _decompress_into
    scratch = memoryview(bytearray(0))
    out: list[bytes] = []
    keep = out.append
    for offset, length in spans:
        end = offset + length - CRC_SIZE
        compressed = view[offset:end]
        if length <= CRC_SIZE or crc(compressed) != int.from_bytes(view[end:end + CRC_SIZE], "big"):
            raise RecordBatchError(len(out), f"record of {length} bytes: CRC-32C mismatch or too short")
        try:
            size = decompressed_len(compressed)
            if size > max_len or size > MAX_EXPANSION * (length - CRC_SIZE) or size == 0:
                raise RecordBatchError(len(out), f"record claims {size} uncompressed bytes (limit {max_len})")
            if size > len(scratch):
                scratch = memoryview(bytearray(size))
            chunk = scratch[:size]
            if decompress_into(compressed, chunk) != size:
                raise RecordBatchError(len(out), f"Snappy data shorter than the {size} bytes it claims")
            keep(bytes(chunk))
        except cramjam.DecompressionError as err:
            raise RecordBatchError(len(out), f"bad Snappy data: {err}") from err
    return out

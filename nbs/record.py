"""Chunk records: Snappy block-format bytes followed by their CRC-32C.

``record = snappy_block(chunk) || uint32_be(crc32c(snappy_block(chunk)))``.
The CRC covers only the compressed bytes.  Every table backend stores records
this way, so encoding and checking live here and nowhere else.
"""

from __future__ import annotations

import cramjam
import crc32c

CRC_SIZE = 4


class RecordError(Exception):
    """A record whose CRC or Snappy stream is wrong; table readers add the table name."""


def compress(chunk: bytes) -> bytes:
    """Snappy block format (raw, unframed) of a chunk."""
    return bytes(cramjam.snappy.compress_raw(chunk))


def encode_record(chunk: bytes) -> tuple[bytes, int]:
    """The stored record of ``chunk`` and the length of its compressed part."""
    compressed = compress(chunk)
    return compressed + crc32c.crc32c(compressed).to_bytes(CRC_SIZE, "big"), len(compressed)


def decode_record(record: bytes | memoryview, max_len: int) -> bytes:
    """Check and decompress one record; ``max_len`` bounds the claimed chunk size."""
    if len(record) <= CRC_SIZE:
        raise RecordError(f"record of {len(record)} bytes is too short")
    compressed = record[:-CRC_SIZE]
    want = int.from_bytes(record[-CRC_SIZE:], "big")
    if crc32c.crc32c(compressed) != want:
        raise RecordError("CRC-32C mismatch")
    try:
        size = cramjam.snappy.decompress_raw_len(compressed)
        if size > max_len or size == 0:
            raise RecordError(f"record claims {size} uncompressed bytes (limit {max_len})")
        return bytes(cramjam.snappy.decompress_raw(compressed))
    except cramjam.DecompressionError as err:
        raise RecordError(f"bad Snappy data: {err}") from err

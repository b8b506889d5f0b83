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


_crc32c = crc32c.crc32c
_decompressed_len = cramjam.snappy.decompress_raw_len
_decompress = cramjam.snappy.decompress_raw


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
        if size > max_len or size == 0:
            raise RecordError(f"record claims {size} uncompressed bytes (limit {max_len})")
        return _decompress(compressed).read()
    except cramjam.DecompressionError as err:
        raise RecordError(f"bad Snappy data: {err}") from err

"""Building table files: records in insertion order, then the index and footer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nbs.addr import PREFIX_SIZE, Addr, compute_addr
from nbs.errors import ChunkError, CorruptTableError
from nbs.record import CRC_SIZE, RecordError, decode_record, encode_record
from nbs.table_index import TableIndex, encode_index, name_of_suffixes, parse_table_index

MAX_CHUNK_SIZE = 0xFFFFFFFF


@dataclass(frozen=True)
class WrittenTable:
    """A finished table: its name, bytes and the figures persisters sample."""

    name: Addr
    data: bytes
    chunk_count: int
    uncompressed_len: int
    compressed_len: int

    @classmethod
    def from_bytes(cls, data: bytes) -> WrittenTable:
        """Adopt table bytes built elsewhere (a client), after checking every record.

        Each record must pass its CRC, decompress, and hash to the address the
        index gives it, and the footer's byte total must match: a table that
        would lie about its contents is refused with ``CorruptTableError``.
        """
        index = parse_table_index(data, "incoming table", len(data))
        name = name_of_suffixes(index.suffixes)
        view = memoryview(data)
        total = 0
        for ordinal, addr in enumerate(index.addresses()):
            start = index.offsets[ordinal]
            try:
                chunk = decode_record(view[start:start + index.lengths[ordinal]], index.max_chunk)
            except RecordError as err:
                raise CorruptTableError(str(name), f"record {ordinal}: {err}") from err
            if compute_addr(chunk) != addr:
                raise CorruptTableError(str(name), f"record {ordinal} does not hash to {Addr(addr)}")
            total += len(chunk)
        if total != index.total_uncompressed:
            raise CorruptTableError(str(name), f"footer says {index.total_uncompressed} bytes, records hold {total}")
        return cls(name, data, index.chunk_count, total, index.data_len - CRC_SIZE * index.chunk_count)

    def index(self) -> TableIndex:
        return parse_table_index(self.data, str(self.name), len(self.data))


class TableWriter:
    """Accumulates chunks and produces the bytes of one table."""

    def __init__(self) -> None:
        self._records: list[bytes] = []
        self._tuples: list[tuple[int, int]] = []
        self._lengths: list[int] = []
        self._suffixes: list[bytes] = []
        self._uncompressed = 0
        self._compressed = 0

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, addr: bytes, chunk: bytes) -> None:
        """Append ``chunk`` (whose address is ``addr``) as the next ordinal."""
        if not chunk:
            raise ChunkError("empty chunks cannot be stored")
        if len(chunk) > MAX_CHUNK_SIZE:
            raise ChunkError(f"chunk of {len(chunk)} bytes exceeds the Snappy limit")
        record, compressed = encode_record(chunk)
        ordinal = len(self._lengths)
        self._records.append(record)
        self._tuples.append((int.from_bytes(addr[:PREFIX_SIZE], "big"), ordinal))
        self._lengths.append(len(record))
        self._suffixes.append(bytes(addr[PREFIX_SIZE:]))
        self._uncompressed += len(chunk)
        self._compressed += compressed

    def finish(self) -> WrittenTable:
        """The complete table; with no chunks it is a bare footer (never persisted)."""
        suffixes = b"".join(self._suffixes)
        index = encode_index(self._tuples, self._lengths, suffixes, self._uncompressed)
        data = b"".join(self._records) + index
        return WrittenTable(name_of_suffixes(suffixes), data, len(self._lengths),
                            self._uncompressed, self._compressed)


def build_table(chunks: Iterable[tuple[bytes, bytes]]) -> WrittenTable:
    """A table of ``(address, chunk)`` pairs in the given order."""
    writer = TableWriter()
    for addr, chunk in chunks:
        writer.add(addr, chunk)
    return writer.finish()

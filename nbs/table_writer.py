"""Building table files: records in insertion order, then the index and footer."""

from __future__ import annotations

import functools
import struct
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from nbs.addr import ADDR_SIZE, PREFIX_SIZE, Addr
from nbs.chunk_jobs import encode_all, verify_all
from nbs.errors import ChunkError, CorruptTableError
from nbs.record import CRC_SIZE, EncodedRecords, RecordBatchError, encode_record
from nbs.table_index import TableIndex, encode_sorted_index, name_of_suffixes, parse_table_index, tail_size

MAX_CHUNK_SIZE = 0xFFFFFFFF
_ADDR_PARTS = struct.Struct(f">Q{ADDR_SIZE - PREFIX_SIZE}s")  # an address as (prefix, suffix)


@dataclass(frozen=True)
class WrittenTable:
    """A finished table: its name, bytes and the figures persisters sample.

    The bytes are kept as the pieces they were built in (batches of records,
    then the index), which persisters write one after another: joining a
    table of many megabytes only to write it would copy it once more.
    A table streamed without keeping its records (``TableStream.pieces(keep=False)``)
    has the index as its only piece: ``size`` still counts the whole table.
    """

    name: Addr
    pieces: tuple[bytes, ...]
    chunk_count: int
    uncompressed_len: int
    compressed_len: int
    size: int
    parsed: TableIndex | None = field(default=None, compare=False, repr=False)

    @functools.cached_property
    def data(self) -> bytes:
        """The whole table as one byte string."""
        if sum(map(len, self.pieces)) != self.size:
            raise ValueError(f"table {self.name} was written without keeping its records")
        return self.pieces[0] if len(self.pieces) == 1 else b"".join(self.pieces)

    @classmethod
    def from_bytes(cls, data: bytes) -> WrittenTable:
        """Adopt table bytes built elsewhere (a client), after checking every record.

        Each record must pass its CRC, decompress, and hash to the address the
        index gives it, and the footer's byte total must match: a table that
        would lie about its contents is refused with ``CorruptTableError``.
        """
        index = parse_table_index(data, "incoming table", len(data))
        name = name_of_suffixes(index.suffixes)
        try:
            total = verify_all(memoryview(data)[:index.data_len], index.lengths, index.addresses(), index.max_chunk)
        except RecordBatchError as err:
            raise CorruptTableError(str(name), f"record {err.position}: {err}") from err
        if total != index.total_uncompressed:
            raise CorruptTableError(str(name), f"footer says {index.total_uncompressed} bytes, records hold {total}")
        return cls(name, (data,), index.chunk_count, total, index.data_len - CRC_SIZE * index.chunk_count, len(data),
                   index)

    def index(self) -> TableIndex:
        if self.parsed is not None:
            return self.parsed
        return parse_table_index(self.data, str(self.name), len(self.data))


class TableWriter:
    """Accumulates chunks and produces the bytes of one table.

    Without ``keep`` the records are only counted: a writer whose caller
    already wrote them out finishes with the index as the only piece, so a
    table being persisted is not held twice (as its memtable and its bytes).
    """

    def __init__(self, keep: bool = True) -> None:
        self._keep = keep
        self._records: list[bytes] = []
        self._records_len = 0
        self._prefixes = array("Q")
        self._lengths: list[int] = []
        self._suffixes: list[bytes] = []
        self._uncompressed = 0
        self._compressed = 0

    def __len__(self) -> int:
        return len(self._lengths)

    @property
    def records_len(self) -> int:
        """Bytes of the records added so far."""
        return self._records_len

    @property
    def uncompressed_len(self) -> int:
        """Bytes of the chunks added so far."""
        return self._uncompressed

    def add(self, addr: bytes, chunk: bytes) -> None:
        """Append ``chunk`` (whose address is ``addr``) as the next ordinal."""
        check_chunk_size(chunk)
        record, compressed = encode_record(chunk)
        self.add_encoded((addr,), EncodedRecords(record, [len(record)], compressed, len(chunk)))

    def add_encoded(self, addrs: Sequence[bytes], records: EncodedRecords) -> None:
        """Append records encoded elsewhere (``encode_records``) of chunks with addresses ``addrs``."""
        prefixes, suffixes = zip(*_ADDR_PARTS.iter_unpack(b"".join(addrs)))
        if self._keep:
            self._records.append(records.data)
        self._records_len += len(records.data)
        self._prefixes.extend(prefixes)
        self._lengths.extend(records.lengths)
        self._suffixes.extend(suffixes)
        self._uncompressed += records.uncompressed_len
        self._compressed += records.compressed_len

    def finish(self) -> WrittenTable:
        """The complete table; with no chunks it is a bare footer (never persisted)."""
        suffixes = b"".join(self._suffixes)
        count = len(self._lengths)
        # Sorting ordinals by prefix keeps equal prefixes in ordinal order: the (prefix, ordinal) order.
        ordinals = array("I", sorted(range(count), key=self._prefixes.__getitem__))
        prefixes = array("Q", map(self._prefixes.__getitem__, ordinals))
        encoded_index = encode_sorted_index(prefixes, ordinals, self._lengths, suffixes, self._uncompressed)
        parsed = None
        if count:
            parsed = TableIndex(count, self._uncompressed, prefixes, ordinals, array("I", self._lengths), suffixes)
        return WrittenTable(name_of_suffixes(suffixes), (*self._records, encoded_index), count,
                            self._uncompressed, self._compressed, self._records_len + len(encoded_index), parsed)


def check_chunk_size(chunk: bytes) -> None:
    """Refuse what no table record can hold."""
    if not chunk:
        raise ChunkError("empty chunks cannot be stored")
    if len(chunk) > MAX_CHUNK_SIZE:
        raise ChunkError(f"chunk of {len(chunk)} bytes exceeds the Snappy limit")


class TableStream:
    """A table whose records are encoded by the chunk workers while the ones before them are written.

    The name (the hash of the suffix block) is known before any record is
    encoded, so a persister can start writing at once.  ``pieces`` yields the
    records batch by batch, in order, then the index; afterwards ``table`` is
    the finished table (its records kept only if asked for).  The bytes are
    those ``TableWriter.add`` of each pair would build.
    """

    def __init__(self, addrs: Sequence[bytes], chunks: Sequence[bytes]) -> None:
        """The table of ``chunks[i]`` under ``addrs[i]``, in that order."""
        self._addrs, self._chunks = addrs, chunks
        lengths = list(map(len, chunks))
        if lengths and (min(lengths) == 0 or max(lengths) > MAX_CHUNK_SIZE):
            for chunk in self._chunks:
                check_chunk_size(chunk)
        suffixes = [suffix for _, suffix in _ADDR_PARTS.iter_unpack(b"".join(self._addrs))]
        self.name = name_of_suffixes(b"".join(suffixes))
        self.chunk_count = len(chunks)
        self.uncompressed_len = sum(lengths)
        self._writer: TableWriter | None = None  # while ``pieces`` runs: what it has encoded so far
        self._table: WrittenTable | None = None

    def pieces(self, keep: bool = True) -> Iterator[bytes]:
        """The table's bytes in order, encoded as they are asked for; only once.

        Without ``keep``, ``table`` keeps only the index as its pieces: each
        batch is dropped once the consumer is done with it, so the memory in
        flight is a few batches rather than the whole table.
        """
        self._writer = writer = TableWriter(keep)
        for start, records in encode_all(self._chunks):
            writer.add_encoded(self._addrs[start:start + len(records.lengths)], records)
            yield records.data
        self._table = table = writer.finish()
        self._addrs = self._chunks = ()
        yield table.pieces[-1]

    def projected_size(self) -> int:
        """The table's size as the records encoded so far project it (the chunks' own size before any): how
        much the rest will compress is guessed from how much these did."""
        records, writer = self.uncompressed_len, self._writer
        if writer is not None and writer.uncompressed_len:
            records = writer.records_len * self.uncompressed_len // writer.uncompressed_len
        return records + tail_size(self.chunk_count)

    @property
    def table(self) -> WrittenTable:
        """The finished table (encoding it now if ``pieces`` has not been read)."""
        if self._table is None:
            for _ in self.pieces():
                pass
        assert self._table is not None
        return self._table


def build_table(chunks: Iterable[tuple[bytes, bytes]]) -> WrittenTable:
    """A table of ``(address, chunk)`` pairs in the given order, its records encoded by the chunk workers."""
    pairs = list(chunks)
    return TableStream([addr for addr, _ in pairs], [chunk for _, chunk in pairs]).table

"""``nbs verify``: check every table a store's manifest names, end to end, and optionally every reachable chunk.

Per table: it exists; its footer, index and size agree (ordinals a permutation,
prefixes sorted, records at least a CRC long, the index describing exactly the
stored bytes); its chunk count is the manifest's; its suffix block hashes to its
name; and every record's CRC-32C holds, it decompresses, and its chunk hashes
to the address the index gives it.  Tables are streamed in pieces of at most
``PIECE`` bytes, so memory stays bounded by the largest index, not the store.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbs.addr import PREFIX_SIZE, SUFFIX_SIZE, Addr, compute_addr
from nbs.admin.location import AWSLocation, LocalLocation, Location
from nbs.admin.progress import ProgressFactory
from nbs.admin.reachable import missing_chunks
from nbs.admin.stored_tables import StoredTable, find_aws_table, open_file_table
from nbs.chunk_store import ChunkStore
from nbs.dynamo_manifest import DynamoManifest
from nbs.errors import CorruptTableError, ManifestError, NBSError, StoreNotFoundError
from nbs.manifest import ManifestContents, TableSpec
from nbs.record import RecordError, decode_record
from nbs.stats import Stats
from nbs.table_index import FOOTER_SIZE, TableIndex, name_of_suffixes, parse_table_index, read_footer, tail_size

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PIECE = 8 << 20
MAX_CHUNK_PROBLEMS = 20


@dataclass(frozen=True)
class Problem:
    """One thing wrong, naming the table and chunk concerned when there is one."""

    message: str
    table: str | None = None
    chunk: str | None = None

    def __str__(self) -> str:
        where = [f"table {self.table}"] if self.table else []
        where += [f"chunk {self.chunk}"] if self.chunk else []
        return ": ".join([*where, self.message])

    def to_json(self) -> dict[str, str | None]:
        return {"table": self.table, "chunk": self.chunk, "message": self.message}


@dataclass
class VerifyReport:
    store: str
    root: str
    tables: int = 0
    chunks: int = 0
    bytes: int = 0
    reachable: int | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "root": self.root, "tables": self.tables, "chunks": self.chunks,
                "bytes": self.bytes, "reachable_chunks": self.reachable, "healthy": self.healthy,
                "problems": [p.to_json() for p in self.problems]}


TableOpener = Callable[[TableSpec], StoredTable | None]


def verify(location: Location, reachable: bool, progress: ProgressFactory) -> VerifyReport:
    """Check the store at ``location``; problems go in the report, failures to reach storage raise."""
    if isinstance(location, LocalLocation):
        read_manifest = location.manifest
        where = location.directory
        opener: TableOpener = lambda spec: open_file_table(location.directory, spec.name)  # noqa: E731
    else:
        s3, ddb = location.clients()
        read_manifest = lambda: _aws_manifest(ddb, location)  # noqa: E731
        where = f"s3://{location.bucket} or DynamoDB table {location.table}"
        opener = lambda spec: find_aws_table(s3, ddb, location.table, location.bucket,  # noqa: E731
                                             spec.name, spec.chunk_count)
    try:
        contents = read_manifest()
    except ManifestError as err:
        return VerifyReport(str(location), "", problems=[Problem(str(err))])
    report = VerifyReport(str(location), str(contents.root))
    specs = _distinct_specs(contents, report)
    report.tables = len(specs)
    sizes = {}
    for spec in specs:
        try:
            stored = opener(spec)
        except CorruptTableError as err:
            report.problems.append(Problem(err.reason, err.table))
            continue
        if stored is None:
            report.problems.append(Problem(f"missing (not in {where})", str(spec.name)))
        else:
            sizes[spec.name] = stored.size
            stored.close()
    bar = progress("verify tables", sum(sizes.values()), "B")
    try:
        for spec in specs:
            if spec.name in sizes:
                report.problems.extend(_check_stored(spec, opener, report, bar.update))
    finally:
        bar.close()
    if reachable:
        _check_reachable(location, report, progress)
    return report


def _aws_manifest(ddb: DynamoDBClient, location: AWSLocation) -> ManifestContents:
    found = DynamoManifest(ddb, location.table, location.store).parse_if_exists(Stats())
    if found is None:
        raise StoreNotFoundError(f"{location}: no such store (no manifest item)")
    return found


def _distinct_specs(contents: ManifestContents, report: VerifyReport) -> list[TableSpec]:
    """Each table once; a table named twice with two chunk counts is a problem."""
    specs: dict[Addr, TableSpec] = {}
    for spec in contents.specs:
        seen = specs.setdefault(spec.name, spec)
        if seen.chunk_count != spec.chunk_count:
            report.problems.append(Problem(f"the manifest names it with {seen.chunk_count} and with "
                                           f"{spec.chunk_count} chunks", str(spec.name)))
    return list(specs.values())


def _check_stored(spec: TableSpec, opener: TableOpener, report: VerifyReport,
                  advance: Callable[[int], object]) -> list[Problem]:
    stored = opener(spec)
    if stored is None:
        return [Problem("vanished while being verified", str(spec.name))]
    try:
        report.bytes += stored.size
        return list(check_table(spec, stored, report, advance))
    finally:
        stored.close()


def check_table(spec: TableSpec, stored: StoredTable, report: VerifyReport,
                advance: Callable[[int], object]) -> Iterator[Problem]:
    """The problems of one stored table; counts its chunks into ``report``."""
    label = str(spec.name)
    try:
        index = _read_index(label, stored)
    except CorruptTableError as err:
        yield Problem(err.reason, label)
        return
    if index.chunk_count != spec.chunk_count:
        yield Problem(f"holds {index.chunk_count} chunks, the manifest says {spec.chunk_count}", label)
    actual = name_of_suffixes(index.suffixes)
    if actual != spec.name:
        yield Problem(f"its suffix block hashes to {actual}, not to its name", label)
    report.chunks += index.chunk_count
    yield from _check_records(label, index, stored, advance)


def _read_index(label: str, stored: StoredTable) -> TableIndex:
    size = stored.size
    if size < FOOTER_SIZE:
        raise CorruptTableError(label, f"{size} bytes is too short for a table (truncated?)")
    count, _ = read_footer(stored.read(size - FOOTER_SIZE, FOOTER_SIZE), label)
    need = tail_size(count)
    if need > size:
        raise CorruptTableError(label, f"its footer claims {count} chunks, whose index needs {need} bytes, "
                                       f"but it has {size} (truncated?)")
    return parse_table_index(stored.read(size - need, need), label, size)


def _check_records(label: str, index: TableIndex, stored: StoredTable,
                   advance: Callable[[int], object]) -> Iterator[Problem]:
    """CRC, decompression and address of every record, reading at most ``PIECE`` bytes at a time."""
    prefix_of = array("Q", bytes(8 * index.chunk_count))
    for prefix, ordinal in zip(index.prefixes, index.ordinals):
        prefix_of[ordinal] = prefix
    offsets, lengths, suffixes = index.offsets, index.lengths, index.suffixes
    bad = 0
    uncompressed = 0
    for first, end in _pieces(index):
        start = offsets[first]
        length = offsets[end] - start
        data = stored.read(start, length)
        if len(data) != length:
            yield Problem(f"short read of {len(data)}/{length} bytes at {start}", label)
            return
        view = memoryview(data)
        for ordinal in range(first, end):
            addr = (prefix_of[ordinal].to_bytes(PREFIX_SIZE, "big")
                    + suffixes[ordinal * SUFFIX_SIZE:(ordinal + 1) * SUFFIX_SIZE])
            rel = offsets[ordinal] - start
            try:
                chunk = decode_record(view[rel:rel + lengths[ordinal]], index.max_chunk)
            except RecordError as err:
                problem = str(err)
            else:
                uncompressed += len(chunk)
                actual = compute_addr(chunk)
                if actual == addr:
                    continue
                problem = f"its content hashes to {Addr(actual)}"
            bad += 1
            if bad <= MAX_CHUNK_PROBLEMS:
                yield Problem(problem, label, str(Addr(addr)))
        advance(length)
    if bad > MAX_CHUNK_PROBLEMS:
        yield Problem(f"{bad - MAX_CHUNK_PROBLEMS} more bad chunks not listed", label)
    if not bad and uncompressed != index.total_uncompressed:
        yield Problem(f"its chunks hold {uncompressed} bytes, its footer says {index.total_uncompressed}", label)
    advance(stored.size - index.data_len)


def _pieces(index: TableIndex) -> Iterator[tuple[int, int]]:
    """Ordinal ranges ``[first, end)`` whose records span at most ``PIECE`` bytes (or one bigger record)."""
    offsets, n = index.offsets, index.chunk_count
    first = 0
    while first < n:
        limit = offsets[first] + PIECE
        end = first + 1
        while end < n and offsets[end + 1] <= limit:
            end += 1
        yield first, end
        first = end


def _check_reachable(location: Location, report: VerifyReport, progress: ProgressFactory) -> None:
    try:
        store = _open_store(location)
    except NBSError as err:
        report.problems.append(Problem(f"cannot open the store to walk its chunks: {err}"))
        return
    bar = progress("walk chunks", None, "chunk")
    visited = 0

    def advance(n: int) -> None:
        nonlocal visited
        visited += n
        bar.update(n)

    try:
        for addr, what in missing_chunks(store, advance):
            report.problems.append(Problem(what, chunk=str(addr)))
    finally:
        bar.close()
        store.close()
    report.reachable = visited


def _open_store(location: Location) -> ChunkStore:
    """The store itself (it finds chunks across tables, duplicates and all), opened without creating anything."""
    if isinstance(location, LocalLocation):
        from nbs.factory import new_local_store

        return new_local_store(location.directory)
    assert isinstance(location, AWSLocation)
    from nbs.aws_factory import new_aws_store

    s3, ddb = location.clients()
    return new_aws_store(location.table, location.store, location.bucket, s3, ddb)

"""A table's records cut into parts as a client before ``table_chunks`` streamed them (``table_part``).

nbsd still takes such uploads from clients of earlier versions; the tests
make them here.  Records are encoded batch by batch by the chunk workers and
grouped into parts of at most ``target`` bytes (slices only where a part ends
inside a batch).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from nbs.addr import PREFIX_SIZE, Addr
from nbs.chunk_jobs import encode_all
from nbs.table_index import name_of_suffixes
from nbs.table_writer import MAX_CHUNK_SIZE, check_chunk_size


@dataclass
class TablePart:
    """Consecutive records of a table: part ``seq``, starting at ``offset`` of the record region."""

    seq: int
    offset: int
    pieces: list[bytes | memoryview] = field(default_factory=list)
    addrs: list[bytes] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    size: int = 0

    def add(self, piece: bytes | memoryview, addrs: Sequence[bytes], lengths: Sequence[int]) -> None:
        self.pieces.append(piece)
        self.addrs.extend(addrs)
        self.lengths.extend(lengths)
        self.size += len(piece)


def table_name(addrs: Sequence[bytes]) -> Addr:
    """The name of the table of ``addrs`` in that order (the hash of their suffixes), known before any encoding."""
    return name_of_suffixes(b"".join(addr[PREFIX_SIZE:] for addr in addrs))


def table_parts(addrs: Sequence[bytes], chunks: Sequence[bytes], target: int) -> Iterator[TablePart]:
    """The records of ``chunks[i]`` (address ``addrs[i]``) in order, in parts of at most ``target`` bytes.

    A record larger than ``target`` makes a part of its own.  Records are
    encoded as parts are asked for, a few batches ahead.
    """
    sizes = list(map(len, chunks))
    if sizes and (min(sizes) == 0 or max(sizes) > MAX_CHUNK_SIZE):
        for chunk in chunks:
            check_chunk_size(chunk)
    part = TablePart(0, 0)
    for start, records in encode_all(chunks):
        data, lengths = records.data, records.lengths
        batch_addrs = addrs[start:start + len(lengths)]
        if part.size + len(data) <= target:
            part.add(data, batch_addrs, lengths)
            continue
        view = memoryview(data)
        first, start = 0, 0
        while first < len(lengths):
            last, end = first, start
            while last < len(lengths) and (part.size + end - start + lengths[last] <= target
                                           or (not part.lengths and last == first)):
                end += lengths[last]
                last += 1
            if last > first:
                part.add(view[start:end], batch_addrs[first:last], lengths[first:last])
                first, start = last, end
            if first < len(lengths):
                yield part
                part = TablePart(part.seq + 1, part.offset + part.size)
    if part.lengths:
        yield part

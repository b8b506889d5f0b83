"""The process-wide bound on tables held in memory while they are received."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nbs.addr import Addr
from nbs.errors import StoreFullError, UploadError, UploadMemoryFullError
from nbs.stats import Stats
from nbs.table_upload import MemoryUploadSink
from nbs.table_writer import build_table
from nbs.upload_memory import UPLOAD_MEMORY, UploadMemory
from nbsclient import protocol as p
from tests.forking import in_child


def test_parts_past_the_bound_are_refused_for_now_and_a_table_past_it_alone_for_good() -> None:
    memory = UploadMemory(100)
    memory.reserve(60, 0)
    with pytest.raises(UploadMemoryFullError, match="60 of 100 bytes held"):
        memory.reserve(50, 0)  # another upload's: it fits once the first ends
    assert (memory.held, memory.refusals) == (60, 1)
    with pytest.raises(UploadError, match="limit of 100 bytes") as err:
        memory.reserve(50, 60)  # the same upload's: it never fits
    assert type(err.value) is UploadError
    memory.release(60)
    memory.reserve(100, 0)
    assert memory.held == 100
    memory.limit = None  # no bound at all
    memory.reserve(1 << 40, 0)


def test_a_full_bound_is_answered_as_busy_so_clients_back_off() -> None:
    assert p.error_kind(UploadMemoryFullError("full")) == p.BUSY
    assert p.error_kind(UploadError("never fits")) == "UploadError"


def test_a_forked_child_holds_none_of_its_parent_s_uploads() -> None:
    memory = UploadMemory(100)
    memory.reserve(70, 0)
    def child() -> tuple[int, int]:
        inherited = memory.held
        memory.reserve(100, 0)  # the whole bound is the child's
        return inherited, memory.held

    assert in_child(child) == (0, 100)
    assert memory.held == 70


@pytest.fixture
def bound() -> Iterator[None]:
    before = UPLOAD_MEMORY.limit, UPLOAD_MEMORY.held
    UPLOAD_MEMORY.limit = UPLOAD_MEMORY.held + 1000
    yield
    UPLOAD_MEMORY.limit = before[0]
    assert UPLOAD_MEMORY.held == before[1]  # every sink gave back what it counted


@pytest.mark.parametrize("fails", [False, True])
def test_a_memory_sink_counts_its_parts_until_it_ends_or_is_aborted(bound: None, fails: bool) -> None:
    held = UPLOAD_MEMORY.held

    def persist(table: object, stats: Stats) -> object:
        assert UPLOAD_MEMORY.held == held + 600  # still counted while it is persisted
        if fails:
            raise StoreFullError("the store is full")
        return table

    sink = MemoryUploadSink(persist)  # type: ignore[arg-type]
    sink.write(0, [b"a" * 400, b"b" * 200])
    other = MemoryUploadSink(persist)  # type: ignore[arg-type]
    other.write(0, [b"d" * 300])
    with pytest.raises(UploadMemoryFullError):
        sink.write(600, [b"c" * 200])  # past the bound while the other holds its part: not kept
    assert UPLOAD_MEMORY.held == held + 900
    other.abort()
    other.abort()  # idempotent: nothing given back twice
    assert UPLOAD_MEMORY.held == held + 600
    table = build_table([(Addr.of(b"x"), b"x")])
    assert table.parsed is not None
    if fails:
        with pytest.raises(StoreFullError):
            sink.finish(table.name, table.parsed, b"", Stats())
    else:
        sink.finish(table.name, table.parsed, b"", Stats())
    assert UPLOAD_MEMORY.held == held

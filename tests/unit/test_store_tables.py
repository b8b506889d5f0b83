"""Adopting tables built elsewhere (the daemon's write path) and reporting origins."""

from pathlib import Path

import pytest

from nbs.addr import Addr
from nbs.errors import CorruptTableError
from nbs.factory import new_local_store
from nbs.table_writer import build_table
from tests.helpers import TEST_CHUNKS


def test_write_table_then_commit(tmp_path: Path) -> None:
    store = new_local_store(str(tmp_path))
    table = build_table((Addr.of(c), c) for c in TEST_CHUNKS)
    spec = store.write_table(table.data)
    assert spec.name == table.name and spec.chunk_count == 3
    assert (tmp_path / str(table.name)).read_bytes() == table.data
    assert all(store.get(Addr.of(c)) == c for c in TEST_CHUNKS)
    assert bytes(table.name) in store.table_names()
    other = new_local_store(str(tmp_path))
    assert not other.has(Addr.of(TEST_CHUNKS[0]))  # pending until committed
    assert store.commit(Addr.of(TEST_CHUNKS[0]), store.root())
    other.rebase()
    assert all(other.has(Addr.of(c)) for c in TEST_CHUNKS)


def test_write_table_rejects_garbage(tmp_path: Path) -> None:
    store = new_local_store(str(tmp_path))
    with pytest.raises(CorruptTableError):
        store.write_table(b"definitely not a table")
    data = build_table((Addr.of(c), c) for c in TEST_CHUNKS).data
    with pytest.raises(CorruptTableError):
        store.write_table(data[:-1])
    assert [p.name for p in tmp_path.iterdir()] == []


def test_add_novel_tables_resumes_pending_work(tmp_path: Path) -> None:
    first = new_local_store(str(tmp_path))
    spec = first.write_table(build_table((Addr.of(c), c) for c in TEST_CHUNKS).data)
    resumed = new_local_store(str(tmp_path))
    resumed.add_novel_tables([spec])
    assert resumed.commit(Addr.of(b"root"), resumed.root())
    assert all(new_local_store(str(tmp_path)).has(Addr.of(c)) for c in TEST_CHUNKS)


def test_get_many_with_origins(tmp_path: Path) -> None:
    store = new_local_store(str(tmp_path))
    t1 = store.write_table(build_table([(Addr.of(b"one"), b"one")]).data)
    t2 = store.write_table(build_table([(Addr.of(b"two"), b"two")]).data)
    store.put(b"pending")
    origins: dict[bytes, Addr] = {}
    found = store.get_many_with_origins([Addr.of(b"one"), Addr.of(b"two"), Addr.of(b"pending")], origins)
    assert len(found) == 3
    assert origins == {Addr.of(b"one"): t1.name, Addr.of(b"two"): t2.name}  # memtable chunks have no table

"""The encoder rebuilds Go-written trees bit for bit: root maps and the chunked collections of the fixtures."""

from __future__ import annotations

import pytest

import nbs
from nbs.noms.chunker import new_blob, new_list, new_map
from nbs.noms.datas import Database
from nbs.noms.value_store import ValueStore
from nbs.noms.values import Blob, Collection, List, Map
from tests.integration.nomsfixtures import FIXTURES, LOCAL_FIXTURES


@pytest.mark.parametrize("fixture", LOCAL_FIXTURES)
def test_root_map_reencodes_to_the_stored_root(fixture: str) -> None:
    db = Database(nbs.open_store(str(FIXTURES / fixture / "store")))
    try:
        scratch = ValueStore(nbs.new_memory_store())
        assert new_map(scratch, list(db.datasets())).hash() == db.root()
    finally:
        db.close()


@pytest.mark.parametrize("dataset", ["numbers", "strings", pytest.param("blob", marks=pytest.mark.slow)])
def test_chunked_heads_and_their_history_rebuild_identically(dataset: str) -> None:
    db = Database(nbs.open_store(str(FIXTURES / "local-multitable" / "store")))
    scratch = ValueStore(nbs.new_memory_store())
    try:
        commit = db.head(dataset)
        checked = 0
        while commit is not None:
            value = commit.get("value")
            rebuilt: Collection
            if isinstance(value, List):
                rebuilt = new_list(scratch, list(value))
            elif isinstance(value, Map):
                rebuilt = new_map(scratch, list(value))
            else:
                assert isinstance(value, Blob)
                rebuilt = new_blob(scratch, value.read_all())
            assert rebuilt.hash() == value.hash() and rebuilt.level == value.level
            checked += 1
            parents = list(commit.get("parents"))  # type: ignore[call-overload]
            commit = db.read_commit(parents[0].target) if parents and dataset != "blob" else None
        assert checked == (1 if dataset == "blob" else 10)
    finally:
        db.close()

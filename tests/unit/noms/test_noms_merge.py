"""Three-way merge rules (go/merge) and the common-ancestor search."""

from __future__ import annotations

import pytest

import nbs
import nbs.noms as noms
from nbs.noms.value_store import ValueStore


@pytest.fixture()
def store() -> ValueStore:
    return ValueStore(nbs.open_store("mem"))


def lst(store: ValueStore, *items: str) -> noms.List:
    return noms.new_list(store, [noms.String(i) for i in items])


@pytest.mark.parametrize("parent, a, b, merged", [
    ("abcd", "bcd", "abcde", "bcde"),  # splices that do not overlap
    ("abc", "ade", "ade", "ade"),  # the very same splice on both sides
    ("abc", "xabc", "abcy", "xabcy"),
])
def test_lists(store: ValueStore, parent: str, a: str, b: str, merged: str) -> None:
    result = noms.three_way(lst(store, *a), lst(store, *b), lst(store, *parent), store)
    assert result == lst(store, *merged)


@pytest.mark.parametrize("a, b", [("adbc", "ac"), ("aebc", "adbc")])
def test_overlapping_list_splices_conflict(store: ValueStore, a: str, b: str) -> None:
    with pytest.raises(noms.MergeConflict, match="Overlapping splices"):
        noms.three_way(lst(store, *a), lst(store, *b), lst(store, *"abc"), store)


def test_sets_structs_and_nested_maps(store: ValueStore) -> None:
    def s(*xs: int) -> noms.Value:
        return noms.to_value(store, set(xs))

    assert noms.three_way(s(1, 2, 4), s(2, 3), s(1, 2), store) == s(2, 3, 4)
    person = noms.Struct("P", {"a": noms.Number(1), "b": noms.Number(2)})
    left = noms.struct_set(person, "a", noms.Number(10))
    right = noms.struct_delete(person, "b")
    assert noms.three_way(left, right, person, store) == noms.Struct("P", {"a": noms.Number(10)})
    nested = noms.to_value(store, {"m": {"x": 1, "y": 2}})
    a = noms.to_value(store, {"m": {"x": 10, "y": 2}})
    b = noms.to_value(store, {"m": {"x": 1, "y": 2, "z": 3}})
    assert noms.three_way(a, b, nested, store) == noms.to_value(store, {"m": {"x": 10, "y": 2, "z": 3}})
    with pytest.raises(noms.MergeConflict) as info:
        noms.three_way(left, noms.struct_delete(person, "a"), person, store)
    assert str(info.value) == 'Conflict:\nmodded "a"\nvs\nremoved "a"\n'  # Go's text for unlike changes
    with pytest.raises(noms.MergeConflict, match="Cannot merge Number with List<String>."):
        noms.three_way(noms.Number(1), lst(store, "a"), None, store)


def test_common_ancestor_in_a_dag() -> None:
    with noms.open_database("mem") as db:
        base = db.commit("a", noms.Number(0))
        db.commit("b", noms.Number(0))
        a1 = db.commit("a", noms.Number(1))
        b1 = db.commit("b", noms.Number(2), parents=[base.ref_to()])
        b2 = db.commit("b", noms.Number(3))
        found = db.common_ancestor(a1.ref_to(), b2.ref_to())
        assert found is not None and found.target == base.hash()
        assert b1.hash() != a1.hash()
        lone = db.commit("c", noms.Number(9))
        assert db.common_ancestor(a1.ref_to(), lone.ref_to()) is None

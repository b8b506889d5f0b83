"""The datasets layer (NOMS-VALUES.md 8, 12.1, 13.2): commits, heights, root map, delete, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

import nbs
from nbs.addr import Addr
from nbs.noms.chunker import new_blob, new_list, new_map, new_set
from nbs.noms.datas import Database, is_commit, is_valid_dataset_name
from nbs.noms.errors import DatasetError, MergeNeededError
from nbs.noms.printer import describe_type
from nbs.noms.values import Blob, List, Map, Number, Set, String, Struct, Value


@pytest.fixture
def db() -> Database:
    return Database(nbs.new_memory_store())


def dataset_names(db: Database) -> list[bytes]:
    names = []
    for name, _ in db.datasets():
        assert isinstance(name, String)
        names.append(name.value)
    return names


def test_first_commits_of_noms_ds_test(db: Database) -> None:
    assert str(db.commit("testdataset", String("Commit Value")).hash()) == "ld4fuj44sd4gu0pepn7h5hga72282v81"
    assert str(db.commit("testdataset2", String("Commit Value2")).hash()) == "43qqlvkiainn1jf53g705622nndu1bje"
    assert dataset_names(db) == [b"testdataset", b"testdataset2"]
    assert describe_type(db.datasets().type_of()) == "Map<String, Ref<Value>>"


def test_commit_chain_and_head_heights(db: Database) -> None:
    hashes = [str(db.commit("ds", String(v)).hash()) for v in "123"]
    assert hashes == ["ppu3smo89vu0bdukubgooo8efeo1i7q3", "2r6g3brn1867i66rri1suk49fev2js7b",
                      "7f8hmd1okp98ovnph695kumm4lknuqcd"]
    head = db.head_ref("ds")
    assert head is not None and head.height == 3 and describe_type(head.target_type) == "Value"
    third = db.head("ds")
    assert third is not None and is_commit(third)
    parents = third.get("parents")
    assert parents is not None
    parent_ref = next(iter(parents))  # type: ignore[call-overload]
    assert parent_ref.height == 2
    assert parent_ref.encoding().hex().endswith("08070a06436f6d6d6974" "02" "000000" "02")


def test_merges_carry_each_parents_own_type(db: Database) -> None:
    db.commit("ba", String("1"))
    assert str(db.commit("bb", String("10")).hash()) == "7f0obrqkr8pge2o0r6tgkub7jikl0638"
    assert str(db.commit("bc", String("100")).hash()) == "mlfoejp9rhuq4mlmedvceq46ecofu4fm"

    def merge(a: str, b: str, v: str) -> str:
        ha, hb = db.head(a), db.head(b)
        assert ha is not None and hb is not None
        return str(db.commit(a, String(v), parents=[ha.ref_to(), hb.ref_to()]).hash())

    assert merge("ba", "bb", "11") == "5tfaqaak42q0iq8p8d5ej8ju1p1o18t6"
    assert merge("ba", "bc", "101") == "3vtsgav7kotnm4t0g441oah0fhc8f612"


def test_heights_of_refs_and_collections(db: Database) -> None:
    vs = db.store
    r1 = vs.write_value(String("hello"))
    r2 = vs.write_value(r1)
    r3 = vs.write_value(r2)
    assert (r1.height, r2.height, r3.height) == (1, 2, 3)
    strings = new_set(vs, [String("a"), String("b")])
    assert vs.write_value(strings).height == 1
    assert vs.write_value(new_set(vs, [vs.write_value(String("a"))])).height == 2
    assert vs.write_value(new_list(vs, [strings])).height == 1
    assert vs.write_value(new_list(vs, [vs.write_value(strings)])).height == 2
    deep = new_set(vs, [vs.write_value(String("x"))])
    assert vs.write_value(new_list(vs, [vs.write_value(deep)])).height == 3
    assert vs.write_value(new_list(vs, [strings, vs.write_value(strings)])).height == 2


def test_non_fast_forward_commit_is_rejected(db: Database) -> None:
    first = db.commit("ds", String("a"))
    db.commit("ds", String("b"))
    with pytest.raises(MergeNeededError, match="Dataset head is not ancestor of commit"):
        db.commit("ds", String("c"), parents=[first.ref_to()])
    with pytest.raises(DatasetError, match="Invalid dataset name"):
        db.commit("bad name", String("x"))


def test_delete(db: Database) -> None:
    c1 = db.commit("one", String("1"))
    db.commit("two", String("2"))
    old = db.delete("one")
    assert old.target == c1.hash()
    assert dataset_names(db) == [b"two"] and db.head("one") is None
    with pytest.raises(DatasetError, match="Dataset one not found"):
        db.delete("one")
    db.delete("two")
    assert db.root() == Addr.of(bytes.fromhex("060000"))  # Go writes the empty map, not a zero root
    assert db.datasets().length() == 0


def test_concurrent_writers_retry(tmp_path: Path) -> None:
    a = Database(nbs.new_local_store(str(tmp_path)))
    b = Database(nbs.new_local_store(str(tmp_path)))
    a.commit("x", String("from a"))
    b.commit("y", String("from b"))  # b's root is stale; its commit must retry on the new root
    b.commit("x", String("b on top of a"))
    fresh = Database(nbs.new_local_store(str(tmp_path)))
    assert dataset_names(fresh) == [b"x", b"y"]
    head = fresh.head("x")
    assert head is not None and head.get("value") == String("b on top of a")
    for d in (a, b, fresh):
        d.close()


def sample_values(db: Database) -> list[Value]:
    vs = db.store
    return [Number(1.5), String("héllo"), new_list(vs, [Number(i) for i in range(3000)]),
            new_map(vs, [(String(f"k{i}"), Struct("P", {"n": Number(i)})) for i in range(2000)]),
            new_set(vs, [String(f"s{i}") for i in range(10)]), new_blob(vs, bytes(range(256)) * 100),
            Struct("", {"nested": new_list(vs, [new_set(vs, [Number(1)])])})]


@pytest.mark.parametrize("backend", ["mem", "local"])
def test_round_trip_through_a_store(backend: str, tmp_path: Path) -> None:
    cs = nbs.new_memory_store() if backend == "mem" else nbs.new_local_store(str(tmp_path))
    db = Database(cs)
    values = sample_values(db)
    for i, v in enumerate(values):
        db.commit(f"ds{i}", v)
    if backend == "local":
        db.close()
        db = Database(nbs.new_local_store(str(tmp_path)))
    for i, v in enumerate(values):
        head = db.head(f"ds{i}")
        assert head is not None
        stored = head.get("value")
        assert stored is not None and stored.hash() == v.hash()
        if isinstance(stored, Blob) and isinstance(v, Blob):
            assert stored.read_all() == v.read_all()
        elif isinstance(stored, (List, Map, Set)):
            assert list(stored) == list(v)  # type: ignore[call-overload]
    db.close()


def test_dataset_names() -> None:
    for good in ("foo", "foo/bar", "f1", "1f", "a-b_c"):
        assert is_valid_dataset_name(good)
    for bad in ("", " ", "a ", " a", "$", "#", ":", "\n", "💩", "f!!"):
        assert not is_valid_dataset_name(bad)

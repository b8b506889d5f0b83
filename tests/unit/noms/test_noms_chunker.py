"""Prolly-tree chunking: NOMS-VALUES.md 7, the vectors of 12.2 and the leaf counts of 13.1."""

from __future__ import annotations

import pytest

import nbs
from nbs.noms.buzhash import TABLE, BuzHash
from nbs.noms.chunker import new_blob, new_list, new_map, new_set
from nbs.noms.printer import describe_type
from nbs.noms.rolling_hasher import copy_min_length
from nbs.noms.value_store import ValueStore
from nbs.noms.values import Bool, Collection, List, Number, Ref, String, Struct, Value


@pytest.fixture
def vs() -> ValueStore:
    return ValueStore(nbs.new_memory_store())


def numbers(n: int) -> list[Value]:
    return [Number(i) for i in range(n)]


def struct_keys(n: int) -> list[Value]:
    return sorted((Struct("", {"n": Number(i)}) for i in range(n)), key=lambda s: s.hash())


def lcg_bytes(n: int) -> bytes:
    x, out = 1, bytearray()
    for _ in range(n):
        x = (x * 1103515245 + 12345) % (1 << 32)
        out.append((x >> 16) & 0xFF)
    return bytes(out)


def test_buzhash_table_and_first_byte() -> None:
    assert len(TABLE) == 256 and TABLE[0] == 0x12BD9527 and TABLE[255] == 0x8185F4D2
    assert BuzHash().hash_byte(0) == TABLE[0]


def test_sloppy_minimum_copy_lengths() -> None:
    assert [copy_min_length(off) for off in (1, 2048, 2049, 3072, 3073, 3584, 4095)] == [4, 4, 8, 8, 16, 16, 8192]


@pytest.mark.parametrize("build, expected, level, leaves", [
    (lambda vs: new_list(vs, numbers(4096)), "s5c696r9q3mtikm0546mmq5rr18qhhq7", 1, 8),
    (lambda vs: new_list(vs, numbers(16384)), "l6d3ubvabqfd0k3ann9d88mal8r8cah2", 1, 22),
    (lambda vs: new_set(vs, numbers(4096)), "tqregcrht4coqnfq85j9o0vibuqni6bh", 1, 8),
    (lambda vs: new_map(vs, [(Number(i), Number(2 * i)) for i in range(4096)]),
     "03s02gvf9e5uavsfqhgjf92ed1i53u1m", 1, 4),
    (lambda vs: new_set(vs, struct_keys(4096)), "a5nje7jb4n08jjmnvts3rc7usm2jbec0", 1, 9),
    (lambda vs: new_map(vs, [(k, Number(2 * i)) for i, k in enumerate(struct_keys(4096))]),
     "3nltkbqak5ehfm7qa4dejrjdem2l4ium", 2, 11),
])
def test_chunked_collection_vectors(vs: ValueStore, build: object, expected: str, level: int, leaves: int) -> None:
    c = build(vs)  # type: ignore[operator]
    assert isinstance(c, Collection)
    assert str(c.hash()) == expected
    assert c.level == level
    assert sum(1 for _ in c.iter_leaves()) == leaves


def test_mixed_list_and_list_of_refs(vs: ValueStore) -> None:
    mixed = new_list(vs, [String(f"s{i}") if i % 3 == 0 else Number(i / 4) for i in range(20000)])
    assert str(mixed.hash()) == "jo3ho3ds1uc8muq8cbg7gifphrp82mpg"
    assert describe_type(mixed.type_of()) == "List<Number | String>"
    assert describe_type(mixed.tuples[0].ref.target_type) == "List<Number | String>"
    refs = new_list(vs, [vs.write_value(String(f"v{i}")) for i in range(5000)])
    assert str(refs.hash()) == "i3t2g342qkonq3hgv2k3c18jam0qj6dk"
    assert describe_type(refs.type_of()) == "List<Ref<String>>"
    assert all(t.ref.height == 2 for t in refs.tuples)


def foo(i: int, bump: bool = False) -> Struct:
    return Struct("Foo", {
        "Bool": Bool(i % 2 == 0), "Number": Number(i + 1 if bump and i % 100 == 0 else i),
        "String1": String(f"I AM A REALLY REALY REALL SUPER CALIFRAGILISTICLY CRAZY-ASSED LONGTASTIC String {i}"),
        "String2": String(f"I am a bit shorter and also more chill: {i}")})


@pytest.mark.slow
def test_struct_valued_maps(vs: ValueStore) -> None:
    m = new_map(vs, [(Number(i), foo(i)) for i in range(10000)])
    assert str(m.hash()) == "jioao4dbcsseag389udqnfc0npr656u9"
    assert m.level == 1 and len(m.tuples) == 87
    edited = new_map(vs, [(Number(i), foo(i, bump=True)) for i in range(10000)])
    assert str(edited.hash()) == "aom52l24en6epv4pk0jqr2g67tc3jhue"
    assert edited.ref_to().height == 3


@pytest.mark.slow
def test_deep_list(vs: ValueStore) -> None:
    lst = new_list(vs, numbers(300000))
    assert str(lst.hash()) == "oq6tm153kcs86cjg9sjarsb9ons7ulbv"
    assert lst.level == 2 and lst.length() == 300000
    assert lst.get(123456) == Number(123456)


def test_blob_vectors(vs: ValueStore) -> None:
    data = lcg_bytes(1 << 20)
    blob = new_blob(vs, data)
    assert str(blob.hash()) == "r69t9eaisq28f6vp046j9jq9i3c49v0h" and blob.level == 2
    assert blob.read_all() == data
    small = new_blob(vs, data[:100])
    assert str(small.hash()) == "etkvr7agp7p93m1nrovhfdsqb7nkmo2f" and small.level == 0
    empty = new_blob(vs, b"")
    assert empty.encoding() == bytes.fromhex("030000") and str(empty.hash()) == "2eulo8v8rihcjm0e93brv14dopakkder"


def test_list_suite_details(vs: ValueStore) -> None:
    base = new_list(vs, numbers(4096))
    assert describe_type(base.type_of()) == "List<Number>"
    assert all(describe_type(t.ref.type_of()) == "Ref<List<Number>>" for t in base.tuples)
    for changed in (new_list(vs, [Number(0)] + numbers(4096)), new_list(vs, numbers(4096) + [Number(0)])):
        old = {bytes(t.ref.target) for t in base.tuples}
        new = {bytes(t.ref.target) for t in changed.tuples}
        assert len(old ^ new) == 2


class CountingStore(ValueStore):
    def __init__(self) -> None:
        super().__init__(nbs.new_memory_store())
        self.writes = 0

    def write_value(self, value: Value) -> Ref:
        self.writes += 1
        return super().write_value(value)


def test_nested_collections_do_not_write_roots() -> None:
    store = CountingStore()
    inner = [new_list(store, numbers(3)), new_list(store, numbers(5))]
    outer = new_list(store, inner)
    assert isinstance(outer, List) and outer.length() == 2
    assert store.writes == 0


def test_canonical_trees_are_history_independent(vs: ValueStore) -> None:
    a = new_set(vs, numbers(5000))
    b = new_set(vs, list(reversed(numbers(5000))) + numbers(10))
    assert a.hash() == b.hash()
    m1 = new_map(vs, [(Number(i), Number(i)) for i in range(3000)] + [(Number(7), String("last"))])
    m2 = new_map(vs, [(Number(i), String("last") if i == 7 else Number(i)) for i in range(3000)])
    assert m1.hash() == m2.hash()

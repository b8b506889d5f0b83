"""Value encodings: NOMS-VALUES.md 11 (worked examples), 12.1 and 13.1 (encoding_test.go layouts)."""

from __future__ import annotations

import pytest

import nbs
from nbs.addr import Addr
from nbs.noms.chunker import new_blob, new_list, new_map, new_set
from nbs.noms.decode import decode_value
from nbs.noms.errors import DecodeError, EncodeError
from nbs.noms.kind import Kind
from nbs.noms.types import BLOB_TYPE, BOOL_TYPE, NUMBER_TYPE, STRING_TYPE, TYPE_TYPE, StructField, make_struct_type
from nbs.noms.value_store import ValueStore
from nbs.noms.values import (Blob, Bool, List, MetaTuple, Number, OrderedKey, Ref, Set, String, Struct,
                             TypeValue, Value)


@pytest.fixture
def vs() -> ValueStore:
    return ValueStore(nbs.new_memory_store())


def check(v: Value, expected_hex: str, expected_hash: str | None = None) -> None:
    """Encode, compare bytes (and hash), decode back and compare again."""
    assert v.encoding().hex() == expected_hex
    if expected_hash is not None:
        assert str(v.hash()) == expected_hash
    decoded = decode_value(bytes.fromhex(expected_hex))
    assert decoded == v and decoded.encoding() == v.encoding()


def test_example_1_string() -> None:
    s = String("hello")
    check(s, "020568656c6c6f", "n2fg6bm8ia7411elk0jrphsnm7nnjnln")
    assert s.hash().hex() == "b89f032ec8928e4085d5a027bcc797b1ef79deb7"


def test_example_2_numbers() -> None:
    check(Number(1), "010200", "6h9ldndhjoq0r5sbn1955gaearq5dovc")
    check(Number(-1.5), "010501", "55n63i2uvnarrlf2v76gjkamkjpj4v61")
    check(Number(0.1), "019ab3e6cc99b3e60c6d", "nr02c4kq64dsd07nnt702snc4qio70ci")


def test_example_3_map_and_mixed_set(vs: ValueStore) -> None:
    m = new_map(vs, [(String("b"), Number(2)), (String("a"), Number(1))])
    check(m, "060002020161010200020162010202", "mn6uor31am8rtg7glc4s6t40i3bg4ajm")
    assert m.type_of().kind == Kind.MAP
    s = new_set(vs, [String("a"), Number(1), Bool(True)])
    check(s, "080003" "0001" "010200" "020161", "ci0ejj4mhmgov7huj592al1d9takhmjd")


def test_example_4_ref(vs: ValueStore) -> None:
    ref = vs.write_value(String("hello"))
    check(ref, "07b89f032ec8928e4085d5a027bcc797b1ef79deb70201", "r3dj2l0muqobrt392tudqdrnduq68499")
    assert str(ref.target) == "n2fg6bm8ia7411elk0jrphsnm7nnjnln" and ref.height == 1


def test_example_5_meta_sequence(vs: ValueStore) -> None:
    leaf1 = List(0, [Number(0)], vr=vs)
    leaf2 = List(0, [Number(1), Number(2), Number(3)], vr=vs)
    assert str(leaf1.hash()) == "qnhm8nt6cmcro880ht8cqaepvq7hhbct"
    assert str(leaf2.hash()) == "obka0ef6us1djds35615fafsskvt7f5h"
    node = List(1, tuples=[MetaTuple(vs.write_value(leaf1), OrderedKey(Number(1)), 1),
                           MetaTuple(vs.write_value(leaf2), OrderedKey(Number(3)), 3)], vr=vs)
    expected = ("050102"
                "07d5e3645fa66599bc21008f50cd29d9fe8f18ad9d0501" "01" "010200" "01"
                "07c2e8a039e6f702d9b783298257a9fce53fd3bcb10501" "01" "010600" "03")
    assert node.encoding().hex() == expected
    assert str(node.hash()) == "kaoobv93o78s7iiqce0g1hc4u3bndtcl"
    decoded = decode_value(bytes.fromhex(expected), vs)
    assert isinstance(decoded, List) and decoded.length() == 4
    assert [n.value for n in decoded if isinstance(n, Number)] == [0, 1, 2, 3]
    assert decoded.get(2) == Number(2)


def test_writes_primitives() -> None:
    check(Bool(True), "0001")
    check(Bool(False), "0000")
    check(Number(0), "010000")
    check(String("hi"), "02026869")
    for f in (1e18, 1e19, 1e20):
        assert decode_value(Number(f).encoding()) == Number(f)


def test_writes_blob_list_set_map(vs: ValueStore) -> None:
    check(new_blob(vs, b"\x00\x01"), "0300020001")
    check(new_list(vs, [Number(i) for i in range(4)]), "050004" + "010000" "010200" "010202" "010600")
    check(new_set(vs, [Number(3), Number(1), Number(2), Number(0)]), "080004" + "010000" "010200" "010202" "010600")
    check(new_map(vs, [(String("a"), Bool(False)), (String("b"), Bool(True))]), "060002" "0201610000" "0201620001")
    nested = new_list(vs, [new_list(vs, [Number(0)]), new_list(vs, [Number(1), Number(2), Number(3)])])
    check(nested, "050002" "050001010000" "050003010200010202010600")


def test_set_of_sets_is_ordered_by_hash(vs: ValueStore) -> None:
    a = new_set(vs, [Number(0)])
    b = new_set(vs, [Number(1), Number(2), Number(3)])
    outer = new_set(vs, [a, b])
    assert isinstance(outer, Set)
    assert [v.hash() for v in outer] == sorted([a.hash(), b.hash()])
    assert list(outer) == [b, a]  # {1,2,3} sorts before {0} by hash (TestWriteSetOfSet)


def test_writes_structs(vs: ValueStore) -> None:
    check(Struct("S", {}), "09015300")
    check(Struct("S", {"x": Number(42), "b": Bool(True)}), "090153" "02" "01620001" "0178012a02")
    check(Struct("S", {"l": new_list(vs, [])}), "090153" "01" "016c" "050000")


def test_trailing_bytes_are_an_error() -> None:
    data = Struct("S", {"x": Number(42), "b": Bool(True)}).encoding() + b"\x00"
    with pytest.raises(DecodeError, match="trailing"):
        decode_value(data)


def test_compound_blob_layout() -> None:
    """TestWriteCompoundBlob: level-1 node, tuples ref(type Blob, height) + Number key + numLeaves."""
    hashes = [Addr.parse("0" * 31 + c) for c in "123"]
    tuples = [MetaTuple(Ref(h, BLOB_TYPE, height), OrderedKey(Number(n)), n)
              for h, height, n in zip(hashes, (11, 22, 33), (20, 40, 60))]
    blob = Blob(1, tuples=tuples)
    expected = "030103" + "".join(
        f"07{h.hex()}03{height:02x}01{key}{n:02x}"
        for h, height, key, n in zip(hashes, (11, 22, 33), ("0a04", "0a06", "1e04"), (20, 40, 60)))
    assert blob.encoding().hex() == expected
    assert blob.length() == 120


def test_compound_set_keys_are_largest_elements(vs: ValueStore) -> None:
    leaf1 = Set(0, [Number(0), Number(1)], vr=vs)
    leaf2 = Set(0, [Number(2), Number(3), Number(4)], vr=vs)
    node = Set(1, tuples=[MetaTuple(vs.write_value(leaf1), OrderedKey.of(Number(1)), 2),
                          MetaTuple(vs.write_value(leaf2), OrderedKey.of(Number(4)), 3)], vr=vs)
    decoded = decode_value(node.encoding(), vs)
    assert isinstance(decoded, Set) and decoded.length() == 5 and decoded.has(Number(3))
    assert not decoded.has(Number(5))
    blobs = [new_blob(vs, bytes([i])) for i in range(3)]
    blob_set = Set(0, sorted(blobs, key=lambda b: b.hash()), vr=vs)
    tuple_ = MetaTuple(vs.write_value(blob_set), OrderedKey.of(max(blobs, key=lambda b: b.hash())), 3)
    assert tuple_.encoding()[-22:-1] == b"\x0d" + max(b.hash() for b in blobs)


def test_list_of_union_and_types(vs: ValueStore) -> None:
    lst = new_list(vs, [String("0"), Number(1), String("2"), Bool(True)])
    check(lst, "050004" "020130" "010200" "020132" "0001")
    types = new_list(vs, [TypeValue(NUMBER_TYPE), TypeValue(TYPE_TYPE),
                          TypeValue(make_struct_type("S", [StructField("x", NUMBER_TYPE)]))])
    check(types, "050003" "0b01" "0b0b" "0b0901530101780100")
    check(new_list(vs, [TypeValue(BOOL_TYPE), TypeValue(STRING_TYPE)]), "050002" "0b00" "0b02")


def test_writes_ref() -> None:
    target = Addr.parse("0123456789abcdefghijklmnopqrstuv")
    check(Ref(target, NUMBER_TYPE, 4), "07" + target.hex() + "01" "04")


def test_round_trips(vs: ValueStore) -> None:
    values: list[Value] = [String(""), String("💩"), String(b"\xff\xfe"), Number(-0.0), Number(2 ** -52),
                           Struct("", {}), new_map(vs, [(new_set(vs, [Number(1)]), new_list(vs, []))]),
                           new_list(vs, [Number(i) for i in range(5000)])]
    for v in values:
        assert decode_value(v.encoding(), vs) == v


def test_invalid_value_kinds() -> None:
    for kind in (Kind.VALUE, Kind.CYCLE, Kind.UNION, Kind.HASH):
        with pytest.raises(DecodeError):
            decode_value(bytes([kind, 0]))


def test_bad_struct_names_cannot_be_built() -> None:
    with pytest.raises(EncodeError):
        Struct("S ", {})
    with pytest.raises(EncodeError):
        Struct("S", {"b ": Number(1)})


def test_total_ordering(vs: ValueStore) -> None:
    """compare_test TestCompareTotalOrdering."""
    ordered: list[Value] = [Bool(False), Bool(True), Number(-10), Number(0), Number(10), String("a"), String("b"),
                            String("c")]
    others: list[Value] = [new_set(vs, [Number(i) for i in range(4)]), TypeValue(BOOL_TYPE)]
    ordered += sorted(others, key=lambda v: v.hash())
    for i, a in enumerate(ordered):
        for j, b in enumerate(ordered):
            assert (a < b) == (i < j)


def test_commit_and_root_map_bytes() -> None:
    """NOMS-VALUES.md 8.2 / 11 example 6 (noms_root_test)."""
    from nbs.noms.datas import Database
    db = Database(nbs.new_memory_store())
    commit = db.commit("root-get", String("hello!"))
    assert commit.encoding().hex() == ("0906436f6d6d697403046d65746109000007706172656e74730800000576616c7565"
                                       "020668656c6c6f21")
    assert str(commit.hash()) == "qpp3rj5ca0306ckci21bils180rj3vtr"
    assert str(db.root()) == "5te45oue1g918rpcvmc3d2emqkse4fhq"
    root = db.read_value(db.root())
    assert root is not None and root.encoding().hex() == (
        "060001" "0208726f6f742d676574" "07d6723dccac500603328c9082b95781403731ffbb" "04" "01")
    second = db.commit("root-get", String("goodbye"))
    assert str(second.hash()) == "gpmbtinfp03tfl51177kdg2q2a0gbhti"
    assert str(db.root()) == "nm81pr21t66nec3v8jts5e37njg5ab1g"


def test_chunk_refs_are_the_refs_inside_a_value(vs: ValueStore) -> None:
    """TestMapChunks / TestSetChunks / TestRefChunks / TestGenericStructChunks and WalkRefs."""
    from nbs.noms.walk import walk_refs
    r0, r1 = vs.write_value(Number(0)), vs.write_value(Number(1))
    assert list(walk_refs(new_map(vs, [(Number(0), Number(1))]))) == []
    assert list(walk_refs(new_map(vs, [(r0, Number(1))]))) == [r0]
    assert list(walk_refs(new_map(vs, [(Number(0), r1)]))) == [r1]
    assert list(walk_refs(new_set(vs, [r0]))) == [r0]
    assert list(walk_refs(vs.write_value(r0))) == [vs.write_value(r0)]
    assert list(walk_refs(Struct("", {"r": r0, "n": Number(2)}))) == [r0]
    big = new_list(vs, [Number(i) for i in range(5000)])
    assert [r.target for r in walk_refs(big)] == [t.ref.target for t in big.tuples]
    assert list(walk_refs(decode_value(big.encoding(), vs))) == list(walk_refs(big))


def test_unencodable_types() -> None:
    from nbs.noms.types import CycleType
    with pytest.raises(EncodeError):
        TypeValue(CycleType("")).encoding()


class _OtherVersionStore:
    """Just enough of a chunk store to report another data format version."""

    def version(self) -> str:
        return "7.17"


def test_value_store_rejects_other_data_versions() -> None:
    from nbs.noms.errors import NomsError
    with pytest.raises(NomsError, match="SDK version 7.18 incompatible with data of version 7.17"):
        ValueStore(_OtherVersionStore())  # type: ignore[arg-type]

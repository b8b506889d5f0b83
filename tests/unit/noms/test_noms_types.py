"""Types: encoding (NOMS-VALUES.md 4), simplification/TypeOf (6), description (10.6), validation (13.1)."""

from __future__ import annotations

import pytest

import nbs
from nbs.noms.chunker import new_list, new_map, new_set
from nbs.noms.datas import Database
from nbs.noms.errors import DecodeError
from nbs.noms.printer import describe_type
from nbs.noms.simplify import simplify_type
from nbs.noms.types import (BOOL_TYPE, NUMBER_TYPE, STRING_TYPE, CycleType, StructField, decode_type, encode_type,
                            make_list_type, make_map_type, make_set_type, make_struct_type, make_union_type)
from nbs.noms.value_store import ValueStore
from nbs.noms.values import Bool, Number, String, Struct, TypeValue


@pytest.fixture
def vs() -> ValueStore:
    return ValueStore(nbs.new_memory_store())


def test_struct_type_encoding() -> None:
    t = make_struct_type("S", [StructField("x", NUMBER_TYPE)])
    assert encode_type(t).hex() == "0901530101780100"


def test_later_occurrence_of_a_named_struct_is_a_cycle(vs: ValueStore) -> None:
    m = new_map(vs, [(Struct("A", {"x": Number(1)}), Struct("A", {"x": Number(2)}))])
    assert encode_type(m.type_of()).hex() == "06" + "0901410101780100" + "0a0141"
    assert describe_type(m.type_of()) == "Map<Struct A {\n  x: Number,\n}, Cycle<A>>"
    type_value = TypeValue(m.type_of())  # NOMS-VALUES.md 11, example 7
    assert type_value.encoding().hex() == "0b06" + "0901410101780100" + "0a0141"
    assert str(type_value.hash()) == "eim02isd76tdm171isvt4iql5ubtprgc"


def test_union_members_are_sorted_and_folded() -> None:
    raw = make_union_type([
        make_struct_type("B", []), make_list_type(STRING_TYPE), STRING_TYPE,
        make_struct_type("A", [StructField("y", BOOL_TYPE)]),
        NUMBER_TYPE, make_list_type(NUMBER_TYPE), BOOL_TYPE, NUMBER_TYPE])
    t = simplify_type(raw)
    assert encode_type(t).hex() == "0c0600010205" + "0c020102" + "0901410101790000" + "09014200"
    assert describe_type(t) == ("Bool | Number | String | List<Number | String> | Struct A {\n  y: Bool,\n}"
                                " | Struct B {}")


def test_structs_of_one_name_merge_with_optional_fields(vs: ValueStore) -> None:
    lst = new_list(vs, [Struct("P", {"x": Number(1)}), Struct("P", {"y": String("a")})])
    assert encode_type(lst.type_of()).hex() == "05" + "0901500201780179010201" + "01"
    s = simplify_type(make_union_type([
        make_struct_type("S1", [StructField("a", BOOL_TYPE), StructField("b", BOOL_TYPE)]),
        make_struct_type("S1", [StructField("a", BOOL_TYPE)])]))
    assert describe_type(s) == "Struct S1 {\n  a: Bool,\n  b?: Bool,\n}"


def test_empty_collections_have_empty_union_element_types(vs: ValueStore) -> None:
    assert encode_type(new_set(vs, []).type_of()).hex() == "080c00"
    assert encode_type(new_list(vs, []).type_of()).hex() == "050c00"
    assert encode_type(new_map(vs, []).type_of()).hex() == "060c000c00"
    assert describe_type(new_list(vs, []).type_of()) == "List<>"
    assert describe_type(new_map(vs, []).type_of()) == "Map<>"
    assert describe_type(make_union_type()) == ""


def test_flatten_union_types() -> None:
    assert simplify_type(make_union_type([NUMBER_TYPE, BOOL_TYPE])) is not None
    assert describe_type(simplify_type(make_union_type([NUMBER_TYPE, BOOL_TYPE]))) == "Bool | Number"
    assert describe_type(simplify_type(make_union_type([BOOL_TYPE, NUMBER_TYPE]))) == "Bool | Number"
    assert simplify_type(make_union_type([NUMBER_TYPE])) is NUMBER_TYPE
    nested = make_union_type([NUMBER_TYPE, make_union_type([BOOL_TYPE, make_union_type([NUMBER_TYPE])])])
    assert describe_type(simplify_type(nested)) == "Bool | Number"
    maps = make_union_type([make_map_type(STRING_TYPE, NUMBER_TYPE), make_map_type(BOOL_TYPE, NUMBER_TYPE)])
    assert describe_type(simplify_type(maps)) == "Map<Bool | String, Number>"


def test_type_descriptions() -> None:
    assert describe_type(make_map_type(STRING_TYPE, NUMBER_TYPE)) == "Map<String, Number>"
    assert describe_type(make_set_type(STRING_TYPE)) == "Set<String>"
    mah = make_struct_type("MahStruct", [StructField("Field1", STRING_TYPE), StructField("Field2", BOOL_TYPE)])
    assert describe_type(mah) == "Struct MahStruct {\n  Field1: String,\n  Field2: Bool,\n}"
    assert describe_type(make_list_type(make_union_type([NUMBER_TYPE, STRING_TYPE]))) == "List<Number | String>"
    assert describe_type(make_struct_type("Nothing", [])) == "Struct Nothing {}"
    assert describe_type(CycleType("X")) == "UnresolvedCycle<X>"


def test_recursive_struct_type_round_trip_and_description() -> None:
    encoded = bytes.fromhex(
        "090141" "03" "0162" "0163" "0164"       # Struct A, fields b c d
        "0a0141"                                   # b: Cycle<A>
        "05" "0a0141"                              # c: List<Cycle<A>>
        "090144" "02" "0165" "0166" "0a0144" "0a0141" "0000"  # d: Struct D {e: Cycle<D>, f: Cycle<A>}
        "000000")
    t = decode_type(encoded)
    assert describe_type(t) == ("Struct A {\n  b: Cycle<A>,\n  c: List<Cycle<A>>,\n  d: Struct D {\n"
                                "    e: Cycle<D>,\n    f: Cycle<A>,\n  },\n}")
    assert encode_type(t) == encoded
    assert encode_type(simplify_type(t)) == encoded


@pytest.mark.parametrize("encoded, why", [
    ("0c020100", "union members out of order"),
    ("0c020101", "duplicate union members"),
    ("090153020162016100000000", "struct type fields out of order"),
    ("0902532000", "struct name 'S '"),
    ("090153010262200000", "field name 'b '"),
    ("0a0141", "unresolved cycle"),
    ("0a00", "empty cycle name"),
    ("0d", "kind 0x0d is not a type"),
    ("05", "truncated"),
])
def test_validating_type_decoder_rejects(encoded: str, why: str) -> None:
    with pytest.raises(DecodeError):
        decode_type(bytes.fromhex(encoded))


ROOT_COMMIT_TYPE = ("0906436f6d6d69740304" "6d657461" "07706172656e7473" "0576616c7565"
                    "090000" "080c00" "02" "000000")


def test_commit_types() -> None:
    """TestNewCommit: root commit Set<>; later ones Set<Ref<Cycle<Commit>>>; unions for mixed values."""
    db = Database(nbs.new_memory_store())
    first = db.commit("ds", String("a"))
    assert encode_type(first.type_of()).hex() == ROOT_COMMIT_TYPE
    second = db.commit("ds", String("b"))
    assert describe_type(second.type_of()) == (
        "Struct Commit {\n  meta: Struct {},\n  parents: Set<Ref<Cycle<Commit>>>,\n  value: String,\n}")
    assert "08070a06436f6d6d6974" in encode_type(second.type_of()).hex()
    third = db.commit("ds", Number(1))
    assert describe_type(third.type_of()) == (
        "Struct Commit {\n  meta: Struct {},\n  parents: Set<Ref<Cycle<Commit>>>,\n  value: Number | String,\n}")
    meta = Struct("Meta", {"date": String("2021"), "number": Number(2)})
    fourth = db.commit("ds", Bool(True), meta=meta)
    assert describe_type(fourth.type_of()) == (
        "Struct Commit {\n  meta: Struct {} | Struct Meta {\n    date: String,\n    number: Number,\n  },\n"
        "  parents: Set<Ref<Cycle<Commit>>>,\n  value: Bool | Number | String,\n}")

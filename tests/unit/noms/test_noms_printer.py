"""Human-readable output: NOMS-VALUES.md 10.6 and encode_human_readable_test (13.1)."""

from __future__ import annotations

import datetime

import pytest

import nbs
from nbs.noms.chunker import new_blob, new_list, new_map, new_set
from nbs.noms.humanize import comma, si_bytes
from nbs.noms.number_format import format_f, format_g
from nbs.noms.printer import datetime_commenter, encoded_value, format_rfc3339, write_encoded_value
from nbs.noms.quote import go_quote
from nbs.noms.types import BOOL_TYPE, NUMBER_TYPE, StructField, make_struct_type
from nbs.noms.value_store import ValueStore
from nbs.noms.values import Bool, Number, String, Struct, TypeValue
from nbs.noms.writers import BufferWriter, MaxLineWriter


@pytest.fixture
def vs() -> ValueStore:
    return ValueStore(nbs.new_memory_store())


@pytest.mark.parametrize("f, expected", [
    (0.0, "0"), (42.0, "42"), (-42.0, "-42"), (0.1, "0.1"), (123456.0, "123456"), (999999.0, "999999"),
    (1e6, "1e+06"), (1234567.0, "1.234567e+06"), (0.0001, "0.0001"), (1e-5, "1e-05"), (2.5e-5, "2.5e-05"),
    (1.5e-7, "1.5e-07"), (314159.26535, "314159.26535"), (3.1415926535e20, "3.1415926535e+20"), (1e20, "1e+20"),
    (1.2345678901234567e19, "1.2345678901234567e+19"), (1 / 3, "0.3333333333333333"),
    (1.7976931348623157e308, "1.7976931348623157e+308"), (5e-324, "5e-324"), (-0.0, "-0"),
    (3.1415926535, "3.1415926535"),
])
def test_format_g(f: float, expected: str) -> None:
    assert format_g(f) == expected


@pytest.mark.parametrize("f, expected", [(1e20, "100000000000000000000"), (1e4, "10000"), (1.0, "1"), (4.5, "4.5"),
                                         (-1.0, "-1"), (1e-7, "0.0000001"), (0.0, "0")])
def test_format_f(f: float, expected: str) -> None:
    assert format_f(f) == expected


@pytest.mark.parametrize("raw, expected", [
    (b"\t", r'"\t"'), (b"\n", r'"\n"'), (b"\r\n", r'"\r\n"'), (b"\xff", r'"\xff"'), ("💩".encode(), '"💩"'),
    (b"\x07", r'"\a"'), ("☺".encode(), '"☺"'), ("\u00a0".encode(), r'"\u00a0"'), (b'a"b\\c', r'"a\"b\\c"'),
    (b"\x00\x7f", r'"\x00\x7f"'), (b"\xe2\x82", r'"\xe2\x82"'), ("\U000e0001".encode(), r'"\U000e0001"'),
    (b"\xed\xa0\x80", r'"\xed\xa0\x80"'), (b"plain text", '"plain text"'),
])
def test_go_quote(raw: bytes, expected: str) -> None:
    assert go_quote(raw) == expected


@pytest.mark.parametrize("n, expected", [(0, "0 B"), (9, "9 B"), (17, "17 B"), (256, "256 B"), (1600, "1.6 kB"),
                                         (33000, "33 kB"), (3145728, "3.1 MB"), (1572864, "1.6 MB")])
def test_si_bytes(n: int, expected: str) -> None:
    assert si_bytes(n) == expected


def test_comma() -> None:
    assert comma(2000) == "2,000" and comma(20000) == "20,000" and comma(999) == "999"


def test_primitives() -> None:
    assert encoded_value(Bool(True)) == "true" and encoded_value(Bool(False)) == "false"
    assert encoded_value(Number(3.1415926535)) == "3.1415926535"
    assert encoded_value(String("\t")) == r'"\t"'


def test_lists(vs: ValueStore) -> None:
    assert encoded_value(new_list(vs, [Number(i) for i in range(4)])) == "[  // 4 items\n  0,\n  1,\n  2,\n  3,\n]"
    assert encoded_value(new_list(vs, [])) == "[]"
    assert encoded_value(new_list(vs, [Number(0)])) == "[\n  0,\n]"
    assert encoded_value(new_list(vs, [Number(0)] * 2000)).startswith("[  // 2,000 items\n  0,\n")
    assert encoded_value(new_list(vs, [String("elem1"), Number(2), String("elem3")])) == \
        '[\n  "elem1",\n  2,\n  "elem3",\n]'


def test_sets_and_maps(vs: ValueStore) -> None:
    assert encoded_value(new_set(vs, [Number(i) for i in range(4)])) == "set {  // 4 items\n  0,\n  1,\n  2,\n  3,\n}"
    assert encoded_value(new_map(vs, [(Number(0), Bool(False)), (Number(1), Bool(True))])) == \
        "map {\n  0: false,\n  1: true,\n}"
    assert encoded_value(new_map(vs, [])) == "map {}" and encoded_value(new_set(vs, [])) == "set {}"
    cd = new_set(vs, [String("c"), String("d")])
    ab = new_set(vs, [String("a"), String("b")])
    nested = new_map(vs, [(ab, Number(1)), (cd, Number(2))])
    assert encoded_value(nested) == ('map {\n  set {\n    "c",\n    "d",\n  }: 2,\n'
                                     '  set {\n    "a",\n    "b",\n  }: 1,\n}')


def test_structs() -> None:
    assert encoded_value(Struct("S1", {"x": Number(1), "y": Number(2)})) == "struct S1 {\n  x: 1,\n  y: 2,\n}"
    assert encoded_value(Struct("Rien", {})) == "struct Rien {}"
    assert encoded_value(Struct("", {})) == "struct {}"


def test_types() -> None:
    s1 = make_struct_type("S1", [StructField("a", BOOL_TYPE), StructField("b", BOOL_TYPE, optional=True)])
    assert encoded_value(TypeValue(s1)) == "Struct S1 {\n  a: Bool,\n  b?: Bool,\n}"
    assert encoded_value(TypeValue(make_struct_type("Nothing", []))) == "Struct Nothing {}"
    assert encoded_value(TypeValue(NUMBER_TYPE)) == "Number"


def test_blobs(vs: ValueStore) -> None:
    assert encoded_value(new_blob(vs, b"")) == "blob {}"
    assert encoded_value(new_blob(vs, b"\x01")) == "blob {01}"
    assert encoded_value(new_blob(vs, b"\x01\x02")) == "blob {01 02}"
    assert encoded_value(new_blob(vs, bytes(range(16)))) == "blob {00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f}"
    assert encoded_value(new_blob(vs, bytes(range(17)))) == (
        "blob {  // 17 B\n  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f\n  10\n}")
    text = encoded_value(new_blob(vs, bytes(range(256))))
    assert text.startswith("blob {  // 256 B\n  00 01")
    assert text.endswith("f0 f1 f2 f3 f4 f5 f6 f7 f8 f9 fa fb fc fd fe ff\n}")
    assert encoded_value(new_blob(vs, bytes(1600))).startswith("blob {  // 1.6 kB\n")


def test_blob_over_32k_has_the_go_piece_quirk(vs: ValueStore) -> None:
    """After each 32 KiB piece Go outdents and starts a line: a blank line, then shallower rows."""
    data = bytes(i % 251 for i in range(32768 + 20))
    lines = encoded_value(Struct("", {"b": new_blob(vs, data)})).split("\n")
    assert lines[0] == "struct {" and lines[1] == "  b: blob {  // 33 kB"
    assert lines[2].startswith("    00 01 02") and lines[2049].startswith("    ")
    assert lines[2050] == "  "
    assert lines[2051] == "  " + data[32768:32784].hex(" ")
    assert lines[2052] == "  " + data[32784:].hex(" ")
    assert lines[2053:] == ["},", "}"]


def test_max_lines_truncation(vs: ValueStore) -> None:
    """TestEncodedValueMaxLines: output stops at the first byte after the Nth newline."""
    buf = BufferWriter()
    failed = write_encoded_value(MaxLineWriter(buf, 2, 0), new_list(vs, [Number(i) for i in range(10)]))
    assert failed and buf.getvalue() == "[  // 10 items\n  0,\n"


def test_datetime_commenter() -> None:
    dt = Struct("DateTime", {"secSinceEpoch": Number(1501801626.877)})
    assert encoded_value(dt, commenter=datetime_commenter(datetime.UTC)) == (
        "struct DateTime { // 2017-08-03T23:07:06Z\n  secSinceEpoch: 1.501801626877e+09,\n}")
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    assert format_rfc3339(0, plus2) == "1970-01-01T02:00:00+02:00"
    assert encoded_value(Struct("Other", {"secSinceEpoch": Number(0)}),
                         commenter=datetime_commenter(datetime.UTC)) == "struct Other {\n  secSinceEpoch: 0,\n}"

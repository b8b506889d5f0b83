"""Paths (NOMS-VALUES.md 9.3) and database/dataset/value specs (9.1, 9.2)."""

from __future__ import annotations

import pytest

import nbs
from nbs.addr import Addr
from nbs.errors import SpecError
from nbs.noms.chunker import new_list, new_map, new_set
from nbs.noms.datas import Database
from nbs.noms.errors import DatasetSpecError, PathError
from nbs.noms.path import Path, parse_go_float
from nbs.noms.spec import AbsolutePath, parse_dataset_spec, parse_path_spec
from nbs.noms.values import Bool, Number, String, Struct, TypeValue, Value

HASH = "0123456789abcdefghijklmnopqrstuv"


@pytest.mark.parametrize("text, printed", [
    (".foo", ".foo"), (".foo.bar", ".foo.bar"), (".Q", ".Q"), (".QQ", ".QQ"), ("[true]", "[true]"),
    ("[false]", "[false]"), ("[false]@key", "[false]@key"), ("[42]", "[42]"), ("[1e4]", "[10000]"),
    ("[1.]", "[1]"), ("[1.345]", "[1.345]"), ("[-1]", "[-1]"), ("[\"\"]", "[\"\"]"), ("[\"42\"]", "[\"42\"]"),
    ("[\"42\"]@key", "[\"42\"]@key"), ("[\"line\nbreak\"]", "[\"line\\nbreak\"]"),
    ("[\"a]b\"]", "[\"a]b\"]"), ("[\"\\\"\"]", "[\"\\\"\"]"), (f"[#{HASH}]", f"[#{HASH}]"),
    (f"[#{HASH}]@key", f"[#{HASH}]@key"), (".foo[42].bar", ".foo[42].bar"), ("@at(0)", "@at(0)"),
    ("@at(-5)@key", "@at(-5)@key"), ("@type", "@type"), (".x@target", ".x@target"),
    ("[1e20]", "[100000000000000000000]"),
])
def test_path_parse_success(text: str, printed: str) -> None:
    assert str(Path.parse(text)) == printed


@pytest.mark.parametrize("text, message", [
    ("", "Empty path"), ("[", "Path ends in ["), ("]", "] is missing opening ["), (".", "Invalid field: "),
    ("..", "Invalid field: ."), (".$", "Invalid field: $"), (".foo[", "Path ends in ["),
    ("[42", "[ is missing closing ]"), ("[\"foo", "[ is missing closing ]"), ("[]", "Empty index value"),
    ("[foo]", "Invalid index: foo"), ("[#]", "Invalid hash: "), ("[#abc]", "Invalid hash: abc"),
    (f"[#{HASH}x]", f"Invalid hash: {HASH}x"), ("[\"\\x\"]", 'Only " and \\ can be escaped'),
    ("foo", "Invalid operator: f"), ("@foo", "Unsupported annotation: @foo"),
    ("@key", "Cannot use @key annotation at beginning of path"),
    (".foo@key", "Cannot use @key annotation on: .foo"), ("@at", "@at annotation requires a position argument"),
    ("@at()", "@at annotation requires a position argument"), ("@at(x)", "Invalid position: x"),
    ("[1]@key(x)", "@key annotation does not support arguments"),
    ("@type(1)", "@type annotation does not support arguments"),
    ("@target(1)", "@target annotation does not support arguments"),
])
def test_path_parse_errors(text: str, message: str) -> None:
    with pytest.raises(PathError) as info:
        Path.parse(text)
    assert str(info.value) == message


def test_go_parse_float() -> None:
    assert parse_go_float("1e4") == 10000 and parse_go_float("1.") == 1 and parse_go_float(".5") == 0.5
    assert parse_go_float("+3") == 3 and parse_go_float("0x1p-2") == 0.25
    assert parse_go_float("1e400") is None and parse_go_float("1_0") is None and parse_go_float(" 1") is None


@pytest.fixture
def db() -> Database:
    return Database(nbs.new_memory_store())


def test_path_resolution(db: Database) -> None:
    vs = db.store
    struct_key = Struct("", {"k": Number(1)})
    m = new_map(vs, [(String("a"), Number(1)), (Number(2), String("two")), (struct_key, Bool(True))])
    lst = new_list(vs, [Number(10), Number(20), Number(30)])
    s = new_set(vs, [struct_key, String("x")])
    root = Struct("Root", {"m": m, "l": lst, "s": s, "r": vs.write_value(String("target"))})

    def resolve(text: str) -> Value | None:
        return Path.parse(text).resolve(root, vs)

    assert resolve(".l[1]") == Number(20) and resolve(".l[-1]") == Number(30) and resolve(".l[3]") is None
    assert resolve(".l[1.5]") is None and resolve(".l[1]@key") == Number(1) and resolve(".l@at(-3)") == Number(10)
    assert resolve(".m[\"a\"]") == Number(1) and resolve(".m[2]") == String("two") and resolve(".m[\"zz\"]") is None
    assert resolve(".m[\"a\"]@key") == String("a") and resolve(".m[\"zz\"]@key") is None
    assert resolve(f".m[#{struct_key.hash()}]") == Bool(True)
    assert resolve(f".m[#{struct_key.hash()}]@key") == struct_key
    assert resolve(f".m[#{String('a').hash()}]") is None  # primitive keys are not found by hash
    assert resolve(f".s[#{struct_key.hash()}]") == struct_key
    assert resolve(".s@at(0)") in (struct_key, String("x")) and resolve(".m@at(0)@key") == Number(2)
    assert resolve(".r@target") == String("target") and resolve(".m@target") is None
    assert resolve(".nope") is None and resolve(".l.nope") is None
    t = resolve(".m@type")
    assert isinstance(t, TypeValue) and str(Path.parse("[0]").resolve(t, vs)) is not None
    struct_type = resolve("@type")
    assert isinstance(struct_type, TypeValue)
    field_type = Path.parse(".l").resolve(struct_type, vs)
    assert isinstance(field_type, TypeValue)
    elem = Path.parse("[0]").resolve(field_type, vs)
    assert isinstance(elem, TypeValue) and elem.type.kind.label == "Number"


@pytest.mark.parametrize("text, dataset", [("mem::ds", "ds"), ("mem::ds/one", "ds/one"), ("/tmp/db::foo", "foo"),
                                           ("nbs:/tmp/db::foo-bar_1", "foo-bar_1"),
                                           ("aws:table/bucket/store::ds", "ds"),
                                           ("aws://table:bucket/store::ds", "ds")])
def test_dataset_specs(text: str, dataset: str) -> None:
    spec = parse_dataset_spec(text)
    assert spec.path.dataset == dataset and spec.path.path.is_empty()


def test_aws_specs_split_at_the_last_separator() -> None:
    spec = parse_dataset_spec("aws:table/bucket/store::ds")
    assert (spec.database.protocol, spec.database.table, spec.database.bucket, spec.database.name) == \
        ("aws", "table", "bucket", "store")
    spec = parse_path_spec("aws://table:bucket/a/b::ds.value[1]")
    assert spec.database.name == "a/b" and spec.path.dataset == "ds" and str(spec.path.path) == ".value[1]"
    spec = parse_dataset_spec("nbs:/weird::dir::ds")
    assert spec.database.path == "/weird::dir" and spec.path.dataset == "ds"


@pytest.mark.parametrize("text, error, message", [
    ("mem", DatasetSpecError, "Missing :: after database in mem"),
    ("nbs:hello", DatasetSpecError, "Missing :: after database in nbs:hello"),
    ("mem::", PathError, "Empty path"),
    ("mem::foo.value", DatasetSpecError, "path is not allowed for dataset spec"),
    (f"mem::#{HASH}", DatasetSpecError, "dataset name required for dataset spec"),
    ("mem::$", PathError, "Invalid dataset name: $"),
    ("mem:::ds", SpecError, 'In-memory database must be specified as "mem", not "mem:"'),
    ("ldb:foo::ds", SpecError, "Invalid database protocol  in ldb:foo"),  # sic: Go leaves the protocol out
    ("::ds", SpecError, "Empty spec"),
    ("/file/ba:d::ds", SpecError, "Invalid database protocol  in /file/ba:d"),
])
def test_bad_dataset_specs(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        parse_dataset_spec(text)
    assert str(info.value) == message


def test_path_specs() -> None:
    spec = parse_path_spec(f"mem::#{HASH}.foo[1]")
    assert spec.path.digest == Addr.parse(HASH) and str(spec.path) == f"#{HASH}.foo[1]"
    assert parse_path_spec("mem::").path.is_empty()
    assert str(parse_path_spec("mem::ds.value").path) == "ds.value"
    with pytest.raises(PathError, match="Invalid hash: abc"):
        parse_path_spec("mem::#abc")
    with pytest.raises(PathError, match="Invalid hash: 0123456789abcdefghijklmnopqrstuw"):
        AbsolutePath.parse("#0123456789abcdefghijklmnopqrstuw")


def test_pin_and_resolve(db: Database) -> None:
    commit = db.commit("foo", Struct("", {"x": Number(7)}))
    spec = parse_path_spec("mem::foo.value.x")
    assert spec.path.resolve(db) == Number(7)
    pinned = spec.pin(db)
    assert pinned is not None and str(pinned.path) == f"#{commit.hash()}.value.x"
    assert pinned.path.resolve(db) == Number(7)
    assert parse_path_spec("mem::nope.value").pin(db) is None
    assert parse_path_spec("mem::nope").path.resolve(db) is None

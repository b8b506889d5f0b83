"""Noms types: the model, the binary type encoding and its validating decoder (NOMS-VALUES.md 4).

Types form a graph: a named struct may refer back to itself (or to another
struct of the same name) through its fields.  Identity matters, as in Go:
``simplify`` and the printers track struct types by object identity, and the
encoder writes a later occurrence of an already written struct name as
``Cycle<Name>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from nbs.noms.codec import Reader, Writer
from nbs.noms.errors import DecodeError, EncodeError
from nbs.noms.kind import Kind

NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
"""Struct names (when not empty) and struct field names."""

_PRIMITIVE_TYPE_KINDS = frozenset({Kind.BOOL, Kind.NUMBER, Kind.STRING, Kind.BLOB, Kind.VALUE, Kind.TYPE})
_COMPOUND_ARITY = {Kind.LIST: 1, Kind.SET: 1, Kind.REF: 1, Kind.MAP: 2}


class Type:
    """Base class of every type node."""

    __slots__ = ("kind",)

    def __init__(self, kind: Kind) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        from nbs.noms.printer import describe_type
        return f"Type({describe_type(self)!r})"


class PrimitiveType(Type):
    """Bool, Number, String, Blob, Value or Type; one shared instance each."""

    __slots__ = ()


class CompoundType(Type):
    """List<T>, Set<T>, Ref<T>, Map<K, V> or a union; ``elems`` is mutable for ``simplify``."""

    __slots__ = ("elems",)

    def __init__(self, kind: Kind, elems: list[Type]) -> None:
        super().__init__(kind)
        self.elems = elems


@dataclass
class StructField:
    name: str
    type: Type
    optional: bool = False


class StructType(Type):
    """A struct type; fields are sorted by name and may point back at this object."""

    __slots__ = ("name", "fields")

    def __init__(self, name: str, fields: list[StructField]) -> None:
        super().__init__(Kind.STRUCT)
        self.name = name
        self.fields = fields

    def field(self, name: str) -> StructField | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


class CycleType(Type):
    """An unresolved back-reference to the enclosing struct called ``name``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        super().__init__(Kind.CYCLE)
        self.name = name


BOOL_TYPE = PrimitiveType(Kind.BOOL)
NUMBER_TYPE = PrimitiveType(Kind.NUMBER)
STRING_TYPE = PrimitiveType(Kind.STRING)
BLOB_TYPE = PrimitiveType(Kind.BLOB)
VALUE_TYPE = PrimitiveType(Kind.VALUE)
TYPE_TYPE = PrimitiveType(Kind.TYPE)
_PRIMITIVES = {t.kind: t for t in (BOOL_TYPE, NUMBER_TYPE, STRING_TYPE, BLOB_TYPE, VALUE_TYPE, TYPE_TYPE)}


def make_list_type(elem: Type) -> CompoundType:
    return CompoundType(Kind.LIST, [elem])


def make_set_type(elem: Type) -> CompoundType:
    return CompoundType(Kind.SET, [elem])


def make_ref_type(target: Type) -> CompoundType:
    return CompoundType(Kind.REF, [target])


def make_map_type(key: Type, value: Type) -> CompoundType:
    return CompoundType(Kind.MAP, [key, value])


def make_union_type(members: Iterable[Type] = ()) -> CompoundType:
    return CompoundType(Kind.UNION, list(members))


def make_struct_type(name: str, fields: Iterable[StructField]) -> StructType:
    """A struct type with its fields sorted by name; names are validated."""
    if name and not NAME_RE.fullmatch(name):
        raise EncodeError(f"Invalid struct name: {name!r}")
    ordered = sorted(fields, key=lambda f: f.name.encode())
    for i, f in enumerate(ordered):
        if not NAME_RE.fullmatch(f.name):
            raise EncodeError(f"Invalid struct field name: {f.name!r}")
        if i and ordered[i - 1].name == f.name:
            raise EncodeError(f"Duplicate struct field name: {f.name!r}")
    return StructType(name, ordered)


def union_sort_key(t: Type) -> tuple[int, str]:
    """Canonical order of union members: by kind, structs and cycles by name."""
    if isinstance(t, (StructType, CycleType)):
        return (t.kind, t.name)
    return (t.kind, "")


def is_empty_union(t: Type) -> bool:
    return isinstance(t, CompoundType) and t.kind == Kind.UNION and not t.elems


# -- encoding ---------------------------------------------------------------------------------

def write_type(w: Writer, t: Type, written: set[str]) -> None:
    """Append the encoding of ``t``; ``written`` holds the struct names already serialized."""
    kind = t.kind
    if isinstance(t, PrimitiveType):
        w.u8(kind)
    elif isinstance(t, CompoundType):
        w.u8(kind)
        if kind == Kind.UNION:
            w.count(len(t.elems))
        for elem in t.elems:
            write_type(w, elem, written)
    elif isinstance(t, StructType):
        if t.name and t.name in written:
            w.u8(Kind.CYCLE)
            w.string(t.name.encode())
            return
        if t.name:
            written.add(t.name)
        w.u8(Kind.STRUCT)
        w.string(t.name.encode())
        w.count(len(t.fields))
        for f in t.fields:
            w.string(f.name.encode())
        for f in t.fields:
            write_type(w, f.type, written)
        for f in t.fields:
            w.bool(f.optional)
    elif isinstance(t, CycleType):
        if not t.name:
            raise EncodeError("cannot encode a cycle type without a name")
        w.u8(Kind.CYCLE)
        w.string(t.name.encode())
    else:
        raise EncodeError(f"cannot encode type node {t!r}")


def encode_type(t: Type) -> bytes:
    """The type encoding of ``t`` with a fresh name set (its identity for comparisons)."""
    w = Writer()
    write_type(w, t, set())
    return w.data()


# -- decoding ---------------------------------------------------------------------------------

def _read_name(r: Reader, what: str) -> str:
    return _check_name(r.string(), what)


def _check_name(raw: bytes, what: str) -> str:
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError(f"invalid {what} {raw!r}") from None
    if not NAME_RE.fullmatch(name):
        raise DecodeError(f"invalid {what} {name!r}")
    return name


def read_type(r: Reader, names: dict[str, StructType] | None = None) -> Type:
    """Decode one type, resolving ``Cycle`` names against the structs read so far."""
    if names is None:
        names = {}
    kind_byte = r.u8()
    if kind_byte > Kind.UNION:
        raise DecodeError(f"invalid type kind 0x{kind_byte:02x}")
    kind = Kind(kind_byte)
    if kind in _PRIMITIVE_TYPE_KINDS:
        return _PRIMITIVES[kind]
    arity = _COMPOUND_ARITY.get(kind)
    if arity is not None:
        return CompoundType(kind, [read_type(r, names) for _ in range(arity)])
    if kind == Kind.UNION:
        members = [read_type(r, names) for _ in range(r.count())]
        for prev, cur in zip(members, members[1:]):
            if union_sort_key(prev) >= union_sort_key(cur):
                raise DecodeError("union members are not in canonical order")
        return CompoundType(Kind.UNION, members)
    if kind == Kind.STRUCT:
        return _read_struct_type(r, names)
    # Kind.CYCLE
    raw = r.string()
    name = raw.decode("utf-8", "surrogateescape")
    target = names.get(name)
    if not name or target is None:
        raise DecodeError(f"unresolvable cycle type {name!r}")
    return target


def _read_struct_type(r: Reader, names: dict[str, StructType]) -> StructType:
    raw_name = r.string()
    name = _check_name(raw_name, "struct name") if raw_name else ""
    n = r.count()
    st = StructType(name, [])
    if name:
        names[name] = st
    field_names = [_read_name(r, "struct field name") for _ in range(n)]
    for prev, cur in zip(field_names, field_names[1:]):
        if prev.encode() >= cur.encode():
            raise DecodeError("struct type fields are not sorted by name")
    field_types = [read_type(r, names) for _ in range(n)]
    optional = [r.bool() for _ in range(n)]
    st.fields = [StructField(fn, ft, opt) for fn, ft, opt in zip(field_names, field_types, optional)]
    return st


def decode_type(data: bytes) -> Type:
    """Decode a complete type encoding (no trailing bytes allowed)."""
    r = Reader(data)
    t = read_type(r)
    if not r.at_end():
        raise DecodeError(f"{len(data) - r.pos} trailing bytes after a type")
    return t

"""Decoding values from chunk bytes (NOMS-VALUES.md 2, 3).

A chunk holds exactly one value and every byte must be consumed.  Collections
decode to one prolly-tree node; their children stay in the store until a walk
loads them through the ``ValueReader`` given here.
"""

from __future__ import annotations

from nbs.addr import Addr
from nbs.noms.codec import Reader
from nbs.noms.errors import DecodeError
from nbs.noms.kind import PRIMITIVE_KINDS, Kind
from nbs.noms.types import read_type
from nbs.noms.values import (Blob, Bool, Collection, List, Map, MetaTuple, Number, OrderedKey, Ref, Set, String,
                             Struct, TypeValue, Value, ValueReader)


def decode_value(data: bytes, vr: ValueReader | None = None) -> Value:
    """Decode a whole chunk; trailing bytes are an error."""
    r = Reader(data)
    v = read_value(r, vr)
    if not r.at_end():
        raise DecodeError(f"{len(data) - r.pos} bytes of trailing data after a {v.kind.label} value")
    return v


def read_value(r: Reader, vr: ValueReader | None) -> Value:
    start = r.pos
    kind = r.u8()
    if kind == Kind.NUMBER:
        return Number(r.number())
    if kind == Kind.STRING:
        return String(r.string())
    if kind == Kind.BOOL:
        return Bool(r.bool())
    v: Value
    if kind == Kind.STRUCT:
        v = _read_struct(r, vr)
    elif kind == Kind.REF:
        v = read_ref(r)
    elif kind in (Kind.LIST, Kind.MAP, Kind.SET, Kind.BLOB):
        v = _read_collection(r, Kind(kind), vr)
    elif kind == Kind.TYPE:
        v = TypeValue(read_type(r))
    else:
        raise DecodeError(f"invalid value kind 0x{kind:02x} at offset {start}")
    v._enc = r.buf[start:r.pos]
    return v


def read_ref(r: Reader) -> Ref:
    """A ref after its kind byte: target hash, target type, height."""
    target = r.hash()
    target_type = read_type(r)
    return Ref(Addr(target), target_type, r.count())


def _read_struct(r: Reader, vr: ValueReader | None) -> Struct:
    name = r.string().decode("utf-8", "surrogateescape")
    fields = []
    for _ in range(r.count()):
        field_name = r.string().decode("utf-8", "surrogateescape")
        fields.append((field_name, read_value(r, vr)))
    return Struct(name, fields, _presorted=True)


def _read_ordered_key(r: Reader, vr: ValueReader | None) -> OrderedKey:
    if r.peek() == Kind.HASH:
        r.pos += 1
        return OrderedKey(digest=Addr(r.hash()))
    key = read_value(r, vr)
    if key.kind not in PRIMITIVE_KINDS:
        raise DecodeError(f"a meta tuple key must be a Bool, Number or String, not a {key.kind.label}")
    return OrderedKey(value=key)


def _read_collection(r: Reader, kind: Kind, vr: ValueReader | None) -> Collection:
    level = r.count()
    count = r.count()
    if level > 0:
        tuples = []
        for _ in range(count):
            if r.u8() != Kind.REF:
                raise DecodeError("a meta tuple must start with a Ref")
            ref = read_ref(r)
            key = _read_ordered_key(r, vr)
            tuples.append(MetaTuple(ref, key, r.count()))
        if kind == Kind.BLOB:
            return Blob(level, tuples=tuples, vr=vr)
        if kind == Kind.LIST:
            return List(level, tuples=tuples, vr=vr)
        if kind == Kind.SET:
            return Set(level, tuples=tuples, vr=vr)
        return Map(level, tuples=tuples, vr=vr)
    if kind == Kind.BLOB:
        return Blob(0, r.raw(count), vr=vr)
    if kind == Kind.MAP:
        entries = []
        for _ in range(count):
            entry_key = read_value(r, vr)
            entries.append((entry_key, read_value(r, vr)))
        return Map(0, entries, vr=vr)
    items = [read_value(r, vr) for _ in range(count)]
    if kind == Kind.LIST:
        return List(0, items, vr=vr)
    return Set(0, items, vr=vr)

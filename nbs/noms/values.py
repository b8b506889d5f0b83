"""Noms values: primitives, refs, structs, type values and the four collections.

Every value knows its canonical encoding (``encoding()``), its hash (the chunk
address of that encoding), its type (``type_of()``, NOMS-VALUES.md 6) and the
greatest height of the refs inside it.  A decoded non-primitive keeps the exact
bytes it was decoded from, so hashing never depends on re-encoding.

Collections are prolly-tree nodes: a leaf holds items, a meta node holds
``MetaTuple``s pointing at child nodes of the same kind one level down; the
tree walking lives in ``nbs.noms.prolly``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar, Protocol

from nbs.addr import Addr, compute_addr
from nbs.noms.codec import Writer
from nbs.noms.errors import EncodeError, ValueNotFoundError
from nbs.noms.kind import PRIMITIVE_KINDS, Kind
from nbs.noms.simplify import simplify_type
from nbs.noms.types import (BLOB_TYPE, BOOL_TYPE, NUMBER_TYPE, STRING_TYPE, TYPE_TYPE, NAME_RE, StructField,
                            StructType, Type, encode_type, make_list_type, make_map_type, make_ref_type,
                            make_set_type, make_union_type, write_type)

SortKey = tuple[int, object]


class ValueReader(Protocol):
    """Where collections load their child nodes and refs their targets."""

    def read_value(self, addr: bytes) -> Value | None: ...

    def read_values(self, addrs: Sequence[bytes]) -> dict[bytes, Value]: ...


class Value:
    """Base class of all values; immutable, with encoding, hash and type computed lazily."""

    __slots__ = ("_enc", "_hash", "_type", "_height")
    kind: ClassVar[Kind]

    def __init__(self) -> None:
        self._enc: bytes | None = None
        self._hash: Addr | None = None
        self._type: Type | None = None
        self._height: int | None = None

    # -- encoding and identity ----------------------------------------------------------------

    def write_to(self, w: Writer) -> None:
        """Append this value's encoding (the stored bytes if it was decoded)."""
        if self._enc is not None:
            w.raw(self._enc)
        else:
            self._write(w)

    def _write(self, w: Writer) -> None:
        raise NotImplementedError

    def encoding(self) -> bytes:
        if self._enc is None:
            w = Writer()
            self._write(w)
            self._enc = w.data()
        return self._enc

    def hash(self) -> Addr:
        if self._hash is None:
            self._hash = Addr(compute_addr(self.encoding()))
        return self._hash

    def sort_key(self) -> SortKey:
        """Noms value order (NOMS-VALUES.md 5): primitives by value, others by hash."""
        return (3, bytes(self.hash()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Value):
            return NotImplemented
        return self is other or (self.kind == other.kind and self.encoding() == other.encoding())

    def __hash__(self) -> int:
        return hash(self.encoding())

    def __lt__(self, other: Value) -> bool:
        return self.sort_key() < other.sort_key()

    # -- types and heights ----------------------------------------------------------------------

    def raw_type(self) -> Type:
        """The unsimplified type (union members not yet folded)."""
        raise NotImplementedError

    def type_of(self) -> Type:
        """Go's ``TypeOf``: the simplified type of this value."""
        if self._type is None:
            self._type = simplify_type(self.raw_type())
        return self._type

    def max_ref_height(self) -> int:
        """Greatest height among the refs in this value's encoding, 0 if it has none."""
        if self._height is None:
            self._height = self._compute_height()
        return self._height

    def _compute_height(self) -> int:
        return 0

    def ref_to(self) -> Ref:
        """The ref that writing this value yields (hash, TypeOf, height)."""
        return Ref(self.hash(), self.type_of(), self.max_ref_height() + 1)


class Bool(Value):
    __slots__ = ("value",)
    kind = Kind.BOOL

    def __init__(self, value: bool) -> None:
        super().__init__()
        self.value = bool(value)

    def _write(self, w: Writer) -> None:
        w.u8(Kind.BOOL)
        w.bool(self.value)

    def sort_key(self) -> SortKey:
        return (0, int(self.value))

    def raw_type(self) -> Type:
        return BOOL_TYPE

    def __repr__(self) -> str:
        return f"Bool({self.value})"


class Number(Value):
    __slots__ = ("value",)
    kind = Kind.NUMBER

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = float(value)

    def _write(self, w: Writer) -> None:
        w.u8(Kind.NUMBER)
        w.number(self.value)

    def sort_key(self) -> SortKey:
        return (1, self.value)

    def raw_type(self) -> Type:
        return NUMBER_TYPE

    def __repr__(self) -> str:
        return f"Number({self.value!r})"


class String(Value):
    """A string; held as bytes because Noms never validates UTF-8."""

    __slots__ = ("value",)
    kind = Kind.STRING

    def __init__(self, value: str | bytes) -> None:
        super().__init__()
        self.value = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)

    @property
    def text(self) -> str:
        return self.value.decode("utf-8", "surrogateescape")

    def _write(self, w: Writer) -> None:
        w.u8(Kind.STRING)
        w.string(self.value)

    def sort_key(self) -> SortKey:
        return (2, self.value)

    def raw_type(self) -> Type:
        return STRING_TYPE

    def __repr__(self) -> str:
        return f"String({self.value!r})"


class Ref(Value):
    """A reference to the chunk of another value, with that value's type and the ref height."""

    __slots__ = ("target", "target_type", "height")
    kind = Kind.REF

    def __init__(self, target: bytes, target_type: Type, height: int) -> None:
        super().__init__()
        self.target = Addr(target)
        self.target_type = target_type
        self.height = height

    def _write(self, w: Writer) -> None:
        w.u8(Kind.REF)
        w.raw(self.target)
        write_type(w, self.target_type, set())
        w.count(self.height)

    def raw_type(self) -> Type:
        return make_ref_type(self.target_type)

    def _compute_height(self) -> int:
        return self.height

    def __repr__(self) -> str:
        return f"Ref(#{self.target}, height={self.height})"


class Struct(Value):
    """A struct value; fields are kept sorted by name (byte order)."""

    __slots__ = ("name", "fields")
    kind = Kind.STRUCT

    def __init__(self, name: str, fields: dict[str, Value] | Sequence[tuple[str, Value]],
                 _presorted: bool = False) -> None:
        super().__init__()
        items = list(fields.items()) if isinstance(fields, dict) else list(fields)
        if not _presorted:
            if name and not NAME_RE.fullmatch(name):
                raise EncodeError(f"Invalid struct name: {name!r}")
            for field_name, _ in items:
                if not NAME_RE.fullmatch(field_name):
                    raise EncodeError(f"Invalid struct field name: {field_name!r}")
            items.sort(key=lambda item: item[0].encode())
            for prev, cur in zip(items, items[1:]):
                if prev[0] == cur[0]:
                    raise EncodeError(f"Duplicate struct field name: {cur[0]!r}")
        self.name = name
        self.fields: tuple[tuple[str, Value], ...] = tuple(items)

    def get(self, name: str) -> Value | None:
        for field_name, value in self.fields:
            if field_name == name:
                return value
        return None

    def _write(self, w: Writer) -> None:
        w.u8(Kind.STRUCT)
        w.string(self.name.encode("utf-8", "surrogateescape"))
        w.count(len(self.fields))
        for field_name, value in self.fields:
            w.string(field_name.encode("utf-8", "surrogateescape"))
            value.write_to(w)

    def raw_type(self) -> Type:
        return StructType(self.name, [StructField(n, v.raw_type()) for n, v in self.fields])

    def _compute_height(self) -> int:
        return max((v.max_ref_height() for _, v in self.fields), default=0)

    def __repr__(self) -> str:
        return f"Struct({self.name!r}, {[n for n, _ in self.fields]})"


class TypeValue(Value):
    """A Type used as a value (kind byte 0x0b followed by the type encoding)."""

    __slots__ = ("type",)
    kind = Kind.TYPE

    def __init__(self, t: Type) -> None:
        super().__init__()
        self.type = t

    def _write(self, w: Writer) -> None:
        w.u8(Kind.TYPE)
        write_type(w, self.type, set())

    def raw_type(self) -> Type:
        return TYPE_TYPE

    def __repr__(self) -> str:
        return f"TypeValue({encode_type(self.type).hex()})"


# -- collections --------------------------------------------------------------------------------

class OrderedKey:
    """The key a meta tuple carries: a primitive value, or the hash of a non-primitive one."""

    __slots__ = ("value", "digest")

    def __init__(self, value: Value | None = None, digest: bytes | None = None) -> None:
        self.value = value
        self.digest = digest

    @classmethod
    def of(cls, v: Value) -> OrderedKey:
        if v.kind in PRIMITIVE_KINDS:
            return cls(value=v)
        return cls(digest=v.hash())

    def sort_key(self) -> SortKey:
        if self.value is not None:
            return self.value.sort_key()
        assert self.digest is not None
        return (3, bytes(self.digest))

    def write_to(self, w: Writer) -> None:
        if self.value is not None:
            self.value.write_to(w)
        else:
            assert self.digest is not None
            w.u8(Kind.HASH)
            w.raw(self.digest)


class MetaTuple:
    """One entry of a meta node: child ref, the child's ordered key and its leaf count."""

    __slots__ = ("ref", "key", "num_leaves")

    def __init__(self, ref: Ref, key: OrderedKey, num_leaves: int) -> None:
        self.ref = ref
        self.key = key
        self.num_leaves = num_leaves

    def write_to(self, w: Writer) -> None:
        self.ref.write_to(w)
        self.key.write_to(w)
        w.count(self.num_leaves)

    def encoding(self) -> bytes:
        w = Writer()
        self.write_to(w)
        return w.data()


class Collection(Value):
    """A prolly-tree node: level 0 holds items, higher levels hold meta tuples."""

    __slots__ = ("level", "tuples", "vr", "_length", "_offsets")

    def __init__(self, level: int, tuples: list[MetaTuple] | None, vr: ValueReader | None) -> None:
        super().__init__()
        self.level = level
        self.tuples: list[MetaTuple] = tuples if tuples is not None else []
        self.vr = vr
        self._length: int | None = None
        self._offsets: list[int] | None = None

    def leaf_count(self) -> int:
        """Number of items in this (leaf) node."""
        raise NotImplementedError

    def length(self) -> int:
        """Number of leaf items (elements, entries or bytes) in the whole tree."""
        if self._length is None:
            self._length = self.leaf_count() if self.level == 0 else sum(t.num_leaves for t in self.tuples)
        return self._length

    def is_empty(self) -> bool:
        return self.length() == 0

    def cumulative_offsets(self) -> list[int]:
        """Leaf counts summed over the tuples of a meta node (running totals)."""
        if self._offsets is None:
            total, offsets = 0, []
            for t in self.tuples:
                total += t.num_leaves
                offsets.append(total)
            self._offsets = offsets
        return self._offsets

    def _write(self, w: Writer) -> None:
        w.u8(self.kind)
        w.count(self.level)
        if self.level == 0:
            self._write_leaf(w)
        else:
            w.count(len(self.tuples))
            for t in self.tuples:
                t.write_to(w)

    def _write_leaf(self, w: Writer) -> None:
        raise NotImplementedError

    def _compute_height(self) -> int:
        if self.level > 0:
            return max((t.ref.height for t in self.tuples), default=0)
        return self._leaf_height()

    def _leaf_height(self) -> int:
        return 0

    def raw_type(self) -> Type:
        if self.level > 0:
            return make_union_type(t.ref.target_type for t in self.tuples)
        return self._leaf_raw_type()

    def _leaf_raw_type(self) -> Type:
        raise NotImplementedError

    def reader(self) -> ValueReader:
        if self.vr is None:
            raise ValueNotFoundError("collection node has no value reader to load its children")
        return self.vr

    def iter_leaves(self) -> Iterator[Collection]:
        """The leaf nodes under this node, in order."""
        from nbs.noms.prolly import iter_leaves
        return iter_leaves(self)


class Blob(Collection):
    __slots__ = ("data",)
    kind = Kind.BLOB

    def __init__(self, level: int, data: bytes = b"", tuples: list[MetaTuple] | None = None,
                 vr: ValueReader | None = None) -> None:
        super().__init__(level, tuples, vr)
        self.data = data

    def leaf_count(self) -> int:
        return len(self.data)

    def _write_leaf(self, w: Writer) -> None:
        w.count(len(self.data))
        w.raw(self.data)

    def raw_type(self) -> Type:
        return BLOB_TYPE

    def iter_pieces(self) -> Iterator[bytes]:
        """The blob's bytes, one leaf at a time."""
        for leaf in self.iter_leaves():
            assert isinstance(leaf, Blob)
            if leaf.data:
                yield leaf.data

    def read_all(self) -> bytes:
        return b"".join(self.iter_pieces())

    def __repr__(self) -> str:
        return f"Blob(len={self.length()}, level={self.level})"


class _ItemCollection(Collection):
    """List and Set leaves: a sequence of values."""

    __slots__ = ("items",)

    def __init__(self, level: int, items: list[Value] | None = None, tuples: list[MetaTuple] | None = None,
                 vr: ValueReader | None = None) -> None:
        super().__init__(level, tuples, vr)
        self.items: list[Value] = items if items is not None else []

    def leaf_count(self) -> int:
        return len(self.items)

    def _write_leaf(self, w: Writer) -> None:
        w.count(len(self.items))
        for v in self.items:
            v.write_to(w)

    def _leaf_height(self) -> int:
        return max((v.max_ref_height() for v in self.items), default=0)

    def _elem_union(self) -> Type:
        return make_union_type(v.raw_type() for v in self.items)

    def __iter__(self) -> Iterator[Value]:
        for leaf in self.iter_leaves():
            assert isinstance(leaf, _ItemCollection)
            yield from leaf.items

    def at(self, index: int) -> Value:
        """The item at a position (list order / sorted set order)."""
        from nbs.noms.prolly import leaf_at
        leaf, local = leaf_at(self, index)
        assert isinstance(leaf, _ItemCollection)
        return leaf.items[local]


class List(_ItemCollection):
    __slots__ = ()
    kind = Kind.LIST

    def _leaf_raw_type(self) -> Type:
        return make_list_type(self._elem_union())

    def get(self, index: int) -> Value:
        return self.at(index)

    def __repr__(self) -> str:
        return f"List(len={self.length()}, level={self.level})"


class Set(_ItemCollection):
    __slots__ = ()
    kind = Kind.SET

    def _leaf_raw_type(self) -> Type:
        return make_set_type(self._elem_union())

    def has(self, v: Value) -> bool:
        return self.find(OrderedKey.of(v)) is not None

    def find(self, key: OrderedKey) -> Value | None:
        """The element whose ordered key equals ``key``."""
        from nbs.noms.prolly import find_leaf
        found = find_leaf(self, key.sort_key())
        if found is None:
            return None
        leaf, index = found
        assert isinstance(leaf, Set)
        return leaf.items[index]

    def __repr__(self) -> str:
        return f"Set(len={self.length()}, level={self.level})"


class Map(Collection):
    __slots__ = ("entries",)
    kind = Kind.MAP

    def __init__(self, level: int, entries: list[tuple[Value, Value]] | None = None,
                 tuples: list[MetaTuple] | None = None, vr: ValueReader | None = None) -> None:
        super().__init__(level, tuples, vr)
        self.entries: list[tuple[Value, Value]] = entries if entries is not None else []

    def leaf_count(self) -> int:
        return len(self.entries)

    def _write_leaf(self, w: Writer) -> None:
        w.count(len(self.entries))
        for k, v in self.entries:
            k.write_to(w)
            v.write_to(w)

    def _leaf_height(self) -> int:
        return max((max(k.max_ref_height(), v.max_ref_height()) for k, v in self.entries), default=0)

    def _leaf_raw_type(self) -> Type:
        return make_map_type(make_union_type(k.raw_type() for k, _ in self.entries),
                             make_union_type(v.raw_type() for _, v in self.entries))

    def __iter__(self) -> Iterator[tuple[Value, Value]]:
        for leaf in self.iter_leaves():
            assert isinstance(leaf, Map)
            yield from leaf.entries

    def find(self, key: OrderedKey) -> tuple[Value, Value] | None:
        """The entry whose key's ordered key equals ``key``."""
        from nbs.noms.prolly import find_leaf
        found = find_leaf(self, key.sort_key())
        if found is None:
            return None
        leaf, index = found
        assert isinstance(leaf, Map)
        return leaf.entries[index]

    def get(self, key: Value) -> Value | None:
        entry = self.find(OrderedKey.of(key))
        return entry[1] if entry is not None else None

    def has(self, key: Value) -> bool:
        return self.find(OrderedKey.of(key)) is not None

    def at(self, index: int) -> tuple[Value, Value]:
        from nbs.noms.prolly import leaf_at
        leaf, local = leaf_at(self, index)
        assert isinstance(leaf, Map)
        return leaf.entries[local]

    def __repr__(self) -> str:
        return f"Map(len={self.length()}, level={self.level})"


def leaf_sort_keys(node: Collection) -> list[SortKey]:
    """Ordered keys of the items of a Set or Map leaf (for binary search)."""
    if isinstance(node, Map):
        return [OrderedKey.of(k).sort_key() for k, _ in node.entries]
    assert isinstance(node, Set)
    return [OrderedKey.of(v).sort_key() for v in node.items]


def is_primitive(v: Value) -> bool:
    """Bool, Number and String: ordered by value, usable as path indexes and ordered keys."""
    return v.kind in PRIMITIVE_KINDS

"""Type simplification, the canonical form behind ``TypeOf`` (NOMS-VALUES.md 6).

The algorithm mirrors Go's: clone the raw type tree while replacing every named
struct (and every ``Cycle``) by one shared instance per name; fold unions
(flatten, then merge members of the same collection kind, merge anonymous
structs field by field, sort); finally give each named instance the merged
fields of every struct of that name.  Union members are de-duplicated by
object identity, exactly as Go's ``typeset`` does; primitive types are
singletons, and compound types of one kind always end up merged by folding.
"""

from __future__ import annotations

from collections.abc import Iterator

from nbs.noms.kind import Kind
from nbs.noms.types import (CompoundType, CycleType, PrimitiveType, StructField, StructType, Type,
                            union_sort_key)

_FOLDED_COLLECTIONS = (Kind.LIST, Kind.SET, Kind.REF)


class _TypeSet:
    """An insertion-ordered set of type objects keyed by identity; unions are flattened."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: dict[int, Type] = {}

    def add(self, t: Type) -> None:
        if isinstance(t, CompoundType) and t.kind == Kind.UNION:
            for member in t.elems:
                self.add(member)
        else:
            self.items.setdefault(id(t), t)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Type]:
        return iter(list(self.items.values()))


class _Named:
    """The shared instance for one struct name and the struct types merged into it."""

    __slots__ = ("instance", "sources")

    def __init__(self, name: str) -> None:
        self.instance = StructType(name, [])
        self.sources: list[StructType] = []


def simplify_type(t: Type) -> Type:
    """The simplified (canonical) form of a raw type; ``t`` itself is not modified."""
    named: dict[str, _Named] = {}
    folded = _fold(_clone(t, named, {}), set())
    unresolved: dict[int, Type] = {}
    for name, info in named.items():
        if info.sources:
            info.instance.fields = _merge_fields([s.fields for s in info.sources], set())
        else:
            unresolved[id(info.instance)] = CycleType(name)
    if unresolved:
        folded = _substitute(folded, unresolved, set())
    return folded


def _clone(t: Type, named: dict[str, _Named], copies: dict[int, Type]) -> Type:
    if isinstance(t, PrimitiveType):
        return t
    if isinstance(t, CompoundType):
        return CompoundType(t.kind, [_clone(e, named, copies) for e in t.elems])
    if isinstance(t, CycleType):
        return named.setdefault(t.name, _Named(t.name)).instance
    assert isinstance(t, StructType)
    if t.name:
        info = named.setdefault(t.name, _Named(t.name))
        if id(t) in copies:
            return info.instance
        copies[id(t)] = info.instance
        clone = StructType(t.name, [StructField(f.name, _clone(f.type, named, copies), f.optional)
                                    for f in t.fields])
        info.sources.append(clone)
        return info.instance
    previous = copies.get(id(t))
    if previous is not None:
        return previous
    anonymous = StructType("", [])
    copies[id(t)] = anonymous
    anonymous.fields = [StructField(f.name, _clone(f.type, named, copies), f.optional) for f in t.fields]
    return anonymous


def _fold(t: Type, seen: set[int]) -> Type:
    """Fold every union reachable from ``t`` (mutating the cloned tree in place)."""
    if isinstance(t, CompoundType):
        if t.kind != Kind.UNION:
            t.elems = [_fold(e, seen) for e in t.elems]
            return t
        if not t.elems:
            return t
        members = _TypeSet()
        for e in t.elems:
            members.add(e)
        if not len(members):
            t.elems = []
            return t
        return _fold_union(members, seen)
    if isinstance(t, StructType):
        if id(t) not in seen:
            seen.add(id(t))
            for f in t.fields:
                f.type = _fold(f.type, seen)
    return t


def _fold_union(members: _TypeSet, seen: set[int]) -> Type:
    out: list[Type] = []
    groups: dict[tuple[Kind, str], _TypeSet] = {}
    for t in members:
        if t.kind in _FOLDED_COLLECTIONS or t.kind == Kind.MAP:
            key = (t.kind, "")
        elif isinstance(t, StructType):
            key = (Kind.STRUCT, t.name)
        else:
            out.append(t)
            continue
        groups.setdefault(key, _TypeSet()).add(t)
    for (kind, name), group in groups.items():
        items = list(group)
        if len(items) == 1:
            out.append(items[0])
        elif kind == Kind.MAP:
            out.append(_fold_maps(items, seen))
        elif kind == Kind.STRUCT:
            out.append(StructType(name, _merge_fields([s.fields for s in items if isinstance(s, StructType)],
                                                      seen)))
        else:
            elems = _TypeSet()
            for c in items:
                assert isinstance(c, CompoundType)
                elems.add(c.elems[0])
            out.append(CompoundType(kind, [_fold_union(elems, seen)]))
    out = [_fold(t, seen) for t in out]
    if len(out) == 1:
        return out[0]
    out.sort(key=union_sort_key)
    return CompoundType(Kind.UNION, out)


def _fold_maps(maps: list[Type], seen: set[int]) -> Type:
    keys, values = _TypeSet(), _TypeSet()
    for m in maps:
        assert isinstance(m, CompoundType)
        keys.add(m.elems[0])
        values.add(m.elems[1])
    return CompoundType(Kind.MAP, [_fold_union(keys, seen), _fold_union(values, seen)])


def _merge_fields(field_sets: list[list[StructField]], seen: set[int]) -> list[StructField]:
    """Union of the field names; a field missing (or optional) anywhere becomes optional."""
    merged: dict[str, tuple[int, list[Type]]] = {}
    for fields in field_sets:
        for f in fields:
            count, types = merged.get(f.name, (0, []))
            types.append(f.type)
            merged[f.name] = (count + (0 if f.optional else 1), types)
    total = len(field_sets)
    result = [StructField(name, _fold(CompoundType(Kind.UNION, types), seen), count < total)
              for name, (count, types) in merged.items()]
    result.sort(key=lambda f: f.name.encode())
    return result


def _substitute(t: Type, mapping: dict[int, Type], seen: set[int]) -> Type:
    """Replace the named instances that never got a struct source by ``Cycle<Name>``."""
    if id(t) in mapping:
        return mapping[id(t)]
    if isinstance(t, CompoundType):
        t.elems = [_substitute(e, mapping, seen) for e in t.elems]
    elif isinstance(t, StructType) and id(t) not in seen:
        seen.add(id(t))
        for f in t.fields:
            f.type = _substitute(f.type, mapping, seen)
    return t

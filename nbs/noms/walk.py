"""The chunk references inside a value (NOMS-VALUES.md 3.2, Go's ``WalkRefs``).

Every Ref value, wherever it is nested, and every meta-tuple ref of an inline
prolly-tree node names a child chunk; ordered keys never contain refs.
"""

from __future__ import annotations

from collections.abc import Iterator

from nbs.noms.values import Collection, List, Map, Ref, Set, Struct, Value


def walk_refs(v: Value) -> Iterator[Ref]:
    """The refs in ``v``'s encoding, without following them."""
    if isinstance(v, Ref):
        yield v
    elif isinstance(v, Struct):
        for _, field in v.fields:
            yield from walk_refs(field)
    elif isinstance(v, Collection):
        if v.level > 0:
            for t in v.tuples:
                yield t.ref
        elif isinstance(v, (List, Set)):
            for item in v.items:
                yield from walk_refs(item)
        elif isinstance(v, Map):
            for key, value in v.entries:
                yield from walk_refs(key)
                yield from walk_refs(value)

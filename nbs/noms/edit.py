"""Editing values: new versions of lists, maps, sets and structs, also deep inside another value.

Noms values are immutable and prolly trees are canonical (the same contents
always give the same tree), so an edited collection is built anew from its
edited items; the result hashes exactly as Go's incrementally edited one.
``update_at`` applies an edit at the end of a path and rebuilds every
container on the way back up, as Go's ``diff.Apply`` does for ``noms list
append db::#h.items``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from nbs.noms.chunker import ValueWriter, new_list, new_map, new_set
from nbs.noms.errors import NomsError
from nbs.noms.path import FieldPath, HashIndexPath, IndexPath, PathPart
from nbs.noms.values import List, Map, Number, OrderedKey, Set, SortKey, Struct, Value


class EditError(NomsError):
    """An edit that cannot be applied (index out of range, a path that is not a container, ...)."""


def list_splice(store: ValueWriter, lst: List, at: int, remove: int, items: Sequence[Value] = ()) -> List:
    """``lst`` with ``remove`` items from ``at`` replaced by ``items`` (``at`` past the end appends)."""
    length = lst.length()
    if remove and not (0 <= at and at + remove <= length):
        raise EditError(f"cannot remove {remove} item{'s' if remove != 1 else ''} at index {at} "
                        f"of a list of length {length}")
    if not remove and not items:
        return lst
    values = list(lst)
    at = min(at, length)
    values[at:at + remove] = items
    return new_list(store, values)


def map_edit(store: ValueWriter, m: Map, sets: Iterable[tuple[Value, Value]] = (),
             removes: Iterable[Value] = ()) -> Map:
    """``m`` without the ``removes`` keys and with the ``sets`` entries (last one wins)."""
    entries: dict[SortKey, tuple[Value, Value]] = {k.sort_key(): (k, v) for k, v in m}
    before = dict(entries)
    for key in removes:
        entries.pop(key.sort_key(), None)
    for key, value in sets:
        entries[key.sort_key()] = (key, value)
    if entries == before:
        return m
    return new_map(store, entries.values())


def set_edit(store: ValueWriter, s: Set, inserts: Iterable[Value] = (), removes: Iterable[Value] = ()) -> Set:
    """``s`` without ``removes`` and with ``inserts``."""
    items: dict[SortKey, Value] = {v.sort_key(): v for v in s}
    before = dict(items)
    for v in removes:
        items.pop(v.sort_key(), None)
    for v in inserts:
        items[v.sort_key()] = v
    if items == before:
        return s
    return new_set(store, items.values())


def struct_set(s: Struct, name: str, value: Value) -> Struct:
    fields = dict(s.fields)
    fields[name] = value
    return Struct(s.name, fields)


def struct_delete(s: Struct, name: str) -> Struct:
    if s.get(name) is None:
        return s
    return Struct(s.name, [(n, v) for n, v in s.fields if n != name])


def update_at(store: ValueWriter, root: Value, parts: Sequence[PathPart],
              edit: Callable[[Value], Value]) -> Value:
    """``root`` with the value at ``parts`` replaced by ``edit(value)``."""
    if not parts:
        return edit(root)
    part = parts[0]
    child = part.resolve(root, store)
    if child is None:
        raise EditError(f"no value at {part}")
    new_child = update_at(store, child, parts[1:], edit)
    if new_child is child or new_child == child:
        return root
    return _replace_child(store, root, part, child, new_child)


def _replace_child(store: ValueWriter, parent: Value, part: PathPart, old: Value, new: Value) -> Value:
    if isinstance(part, FieldPath) and isinstance(parent, Struct):
        return struct_set(parent, part.name, new)
    if isinstance(part, (IndexPath, HashIndexPath)) and not part.into_key:
        if isinstance(parent, List) and isinstance(part, IndexPath) and isinstance(part.index, Number):
            index = int(part.index.value)
            return list_splice(store, parent, index if index >= 0 else parent.length() + index, 1, [new])
        if isinstance(parent, Map):
            key = part.index if isinstance(part, IndexPath) else _map_key(parent, part)
            return map_edit(store, parent, sets=[(key, new)])
        if isinstance(parent, Set):
            return set_edit(store, parent, inserts=[new], removes=[old])
    raise EditError(f"cannot edit a {parent.kind.label} through {part}")


def _map_key(m: Map, part: HashIndexPath) -> Value:
    entry = m.find(OrderedKey(digest=part.digest))
    if entry is None:
        raise EditError(f"no entry at {part}")
    return entry[0]

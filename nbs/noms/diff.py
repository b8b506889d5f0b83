"""Value diffs and their text form, as ``noms log`` prints them (NOMS-VALUES.md 10.7, Go's go/diff).

``diff`` walks two values depth-first and yields a ``Difference`` for every
added, removed or changed leaf; containers of the same kind (List, Map, Set,
Struct) are descended into.  Maps, sets and structs are merged in key order;
lists are compared with Go's splice computation: an edit-distance matrix over
the differing middle part, applied top-down on the prolly tree so that
unchanged subtrees are skipped.  ``print_diff`` groups the differences by
parent path under ``<path> {`` headers.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from nbs.noms.humanize import si_bytes
from nbs.noms.kind import Kind
from nbs.noms.path import FieldPath, HashIndexPath, IndexPath, Path, PathPart
from nbs.noms.printer import Commenter, write_encoded_value
from nbs.noms.prolly import load_children
from nbs.noms.values import Blob, Collection, List, Map, MetaTuple, Number, Set, String, Struct, Value, is_primitive
from nbs.noms.writers import BufferWriter, PrefixWriter, TextWriter

MAX_SPLICE_MATRIX_SIZE = 20_000_000
ADD, DEL = "+   ", "-   "

_UNCHANGED, _UPDATED, _INSERTED, _REMOVED = range(4)


class Change(enum.Enum):
    ADDED = "added"
    REMOVED = "removed"
    MODIFIED = "modified"


@dataclass(frozen=True)
class Difference:
    path: tuple[PathPart, ...]
    change: Change
    old: Value | None
    new: Value | None


@dataclass(frozen=True)
class ValueChanged:
    """One key of a Map, Set or Struct that was added, removed or modified (Go's ``ValueChanged``)."""

    change: Change
    key: Value
    old: Value | None
    new: Value | None


@dataclass
class Splice:
    """At ``at`` (old indexes) ``removed`` items were replaced by ``added`` items found at ``start`` (new)."""

    at: int
    removed: int
    added: int
    start: int


def should_descend(v1: Value, v2: Value) -> bool:
    return v1.kind == v2.kind and v1.kind in (Kind.LIST, Kind.MAP, Kind.SET, Kind.STRUCT)


# -- splices -------------------------------------------------------------------------------------

def calc_splices(previous_len: int, current_len: int, max_matrix: int,
                 equal: Callable[[int, int], bool]) -> list[Splice]:
    """Go's ``calcSplices`` (a port of Polymer's edit-distance splices)."""
    min_len = min(previous_len, current_len)
    prefix = 0
    while prefix < min_len and equal(prefix, prefix):
        prefix += 1
    suffix = 0
    while suffix < min_len - prefix and equal(previous_len - 1 - suffix, current_len - 1 - suffix):
        suffix += 1
    previous_end, current_end = previous_len - suffix, current_len - suffix
    if previous_end == prefix and current_end == prefix:
        return []
    if current_end == prefix:
        return [Splice(prefix, previous_end - prefix, 0, 0)]
    if previous_end == prefix:
        return [Splice(prefix, 0, current_end - prefix, prefix)]
    rows, cols = previous_end - prefix, current_end - prefix
    if rows * cols > max_matrix:
        return [Splice(0, rows, cols, 0)]
    ops = _edit_operations(prefix, rows, prefix, cols, equal)
    splices: list[Splice] = []
    splice: Splice | None = None
    unassigned = -1
    at, start = prefix, prefix
    for op in ops:
        if op == _UNCHANGED:
            if splice is not None:
                splices.append(_finished(splice, unassigned))
                splice = None
            at += 1
            start += 1
            continue
        if splice is None:
            splice = Splice(at, 0, 0, unassigned)
        if op == _UPDATED:
            if splice.start == unassigned:
                splice.start = start
            splice.removed += 1
            splice.added += 1
            at += 1
            start += 1
        elif op == _INSERTED:
            splice.added += 1
            if splice.start == unassigned:
                splice.start = start
            start += 1
        else:
            splice.removed += 1
            at += 1
    if splice is not None:
        splices.append(_finished(splice, unassigned))
    return splices


def _finished(splice: Splice, unassigned: int) -> Splice:
    if splice.start == unassigned:
        splice.start = 0
    return splice


def _edit_operations(previous_start: int, rows: int, current_start: int, cols: int,
                     equal: Callable[[int, int], bool]) -> list[int]:
    distances = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows + 1):
        distances[i][0] = i
    for j in range(cols + 1):
        distances[0][j] = j
    for i in range(1, rows + 1):
        row, above = distances[i], distances[i - 1]
        for j in range(1, cols + 1):
            if equal(previous_start + i - 1, current_start + j - 1):
                row[j] = above[j - 1]
            else:
                row[j] = min(above[j] + 1, row[j - 1] + 1)
    i, j = rows, cols
    current = distances[i][j]
    edits: list[int] = []
    while i > 0 or j > 0:
        if i == 0:
            edits.append(_INSERTED)
            j -= 1
            continue
        if j == 0:
            edits.append(_REMOVED)
            i -= 1
            continue
        north_west, west, north = distances[i - 1][j - 1], distances[i - 1][j], distances[i][j - 1]
        smallest = min(west, north, north_west)
        if smallest == north_west:
            edits.append(_UNCHANGED if north_west == current else _UPDATED)
            current = north_west
            i -= 1
            j -= 1
        elif smallest == west:
            edits.append(_REMOVED)
            current = west
            i -= 1
        else:
            edits.append(_INSERTED)
            current = north
            j -= 1
    edits.reverse()
    return edits


class _Sequence:
    """One level of a list's tree (possibly several nodes concatenated), as Go's indexed sequences."""

    def __init__(self, node: Collection, level: int, items: list[Value], tuples: list[MetaTuple]) -> None:
        self.node = node
        self.level = level
        self.items = items
        self.tuples = tuples
        self._keys: list[bytes] | None = None
        self._cumulative: list[int] | None = None

    @classmethod
    def of(cls, node: List) -> _Sequence:
        return cls(node, node.level, node.items, node.tuples)

    def __len__(self) -> int:
        return len(self.tuples) if self.level else len(self.items)

    def keys(self) -> list[bytes]:
        if self._keys is None:
            self._keys = ([bytes(t.ref.target) for t in self.tuples] if self.level
                          else [v.encoding() for v in self.items])
        return self._keys

    def leaves_through(self, i: int) -> int:
        """Leaves under tuples 0..i inclusive."""
        if self._cumulative is None:
            total, cumulative = 0, []
            for t in self.tuples:
                total += t.num_leaves
                cumulative.append(total)
            self._cumulative = cumulative
        return self._cumulative[i]

    def child(self, start: int, length: int) -> _Sequence:
        holder = List(self.level, tuples=self.tuples[start:start + length], vr=self.node.vr)
        children = load_children(holder)
        items: list[Value] = []
        tuples: list[MetaTuple] = []
        for c in children:
            assert isinstance(c, List)
            items.extend(c.items)
            tuples.extend(c.tuples)
        return _Sequence(self.node, self.level - 1, items, tuples)


def list_splices(last: List, current: List) -> Iterator[Splice]:
    """The splices turning ``last`` into ``current`` (Go's ``List.Diff``)."""
    if last == current:
        return
    if current.length() == 0:
        yield Splice(0, last.length(), 0, 0)
        return
    if last.length() == 0:
        yield Splice(0, 0, current.length(), 0)
        return
    yield from _sequence_splices(_Sequence.of(last), 0, _Sequence.of(current), 0)


def _sequence_splices(last: _Sequence, last_offset: int, current: _Sequence,
                      current_offset: int) -> Iterator[Splice]:
    if last.level > current.level:
        yield from _sequence_splices(last.child(0, len(last)), last_offset, current, current_offset)
        return
    if current.level > last.level:
        yield from _sequence_splices(last, last_offset, current.child(0, len(current)), current_offset)
        return
    last_keys, current_keys = last.keys(), current.keys()
    splices = calc_splices(len(last), len(current), MAX_SPLICE_MATRIX_SIZE,
                           lambda i, j: last_keys[i] == current_keys[j])
    for splice in splices:
        if last.level == 0:
            splice.at += last_offset
            if splice.added:
                splice.start += current_offset
            yield splice
            continue
        if splice.removed == 0 or splice.added == 0:
            begin_remove = last.leaves_through(splice.at - 1) if splice.at else 0
            end_remove = last.leaves_through(splice.at + splice.removed - 1) if splice.at + splice.removed else 0
            begin_add = current.leaves_through(splice.start - 1) if splice.start else 0
            end_add = current.leaves_through(splice.start + splice.added - 1) if splice.start + splice.added else 0
            splice.at = last_offset + begin_remove
            splice.removed = end_remove - begin_remove
            splice.added = end_add - begin_add
            if splice.added:
                splice.start = current_offset + begin_add
            yield splice
            continue
        last_child = last.child(splice.at, splice.removed)
        current_child = current.child(splice.start, splice.added)
        yield from _sequence_splices(
            last_child, last_offset + (last.leaves_through(splice.at - 1) if splice.at else 0),
            current_child, current_offset + (current.leaves_through(splice.start - 1) if splice.start else 0))


# -- differences ---------------------------------------------------------------------------------

def diff(v1: Value, v2: Value) -> Iterator[Difference]:
    """Every difference from ``v1`` to ``v2``, depth first (left-right order for maps and sets)."""
    if v1 == v2:
        return
    if not should_descend(v1, v2):
        yield Difference((), Change.MODIFIED, v1, v2)
        return
    yield from _diff((), v1, v2)


def _diff(path: tuple[PathPart, ...], v1: Value, v2: Value) -> Iterator[Difference]:
    if isinstance(v1, List) and isinstance(v2, List):
        yield from _diff_lists(path, v1, v2)
    elif isinstance(v1, Struct) and isinstance(v2, Struct):
        yield from _diff_ordered(path, _struct_items(v1), _struct_items(v2), _field_part)
    elif isinstance(v1, Map) and isinstance(v2, Map):
        yield from _diff_ordered(path, _map_items(v1), _map_items(v2), _key_part)
    elif isinstance(v1, Set) and isinstance(v2, Set):
        yield from _diff_ordered(path, ((v.sort_key(), v, v) for v in v1), ((v.sort_key(), v, v) for v in v2),
                                 _key_part)


def _diff_lists(path: tuple[PathPart, ...], v1: List, v2: List) -> Iterator[Difference]:
    for splice in list_splices(v1, v2):
        if splice.removed == splice.added:
            for i in range(splice.removed):
                old, new = v1.get(splice.at + i), v2.get(splice.start + i)
                child = path + (IndexPath(Number(splice.at + i)),)
                if should_descend(old, new):
                    yield from _diff(child, old, new)
                else:
                    yield Difference(child, Change.MODIFIED, old, new)
            continue
        for i in range(splice.removed):
            yield Difference(path + (IndexPath(Number(splice.at + i)),), Change.REMOVED,
                             v1.get(splice.at + i), None)
        for i in range(splice.added):
            yield Difference(path + (IndexPath(Number(splice.start + i)),), Change.ADDED,
                             None, v2.get(splice.start + i))


_Item = tuple[tuple[int, object], Value, Value]


def _struct_items(s: Struct) -> Iterator[_Item]:
    for name, value in s.fields:
        yield (0, name.encode()), String(name), value


def _map_items(m: Map) -> Iterator[_Item]:
    for k, v in m:
        yield k.sort_key(), k, v


def _field_part(key: Value) -> PathPart:
    assert isinstance(key, String)
    return FieldPath(key.text)


def _key_part(key: Value) -> PathPart:
    return IndexPath(key) if is_primitive(key) else HashIndexPath(key.hash())


def _merge_sorted(last: Iterator[_Item],
                  current: Iterator[_Item]) -> Iterator[tuple[Value, Value | None, Value | None]]:
    """Walk two key-sorted sequences of (sort key, key, value) together: (key, old, new) where they differ."""
    old, new = next(last, None), next(current, None)
    while old is not None or new is not None:
        if old is None or (new is not None and new[0] < old[0]):
            assert new is not None
            yield new[1], None, new[2]
            new = next(current, None)
        elif new is None or old[0] < new[0]:
            yield old[1], old[2], None
            old = next(last, None)
        else:
            if old[2] != new[2]:
                yield old[1], old[2], new[2]
            old, new = next(last, None), next(current, None)


def _items(v: Value) -> Iterator[_Item]:
    if isinstance(v, Struct):
        return _struct_items(v)
    if isinstance(v, Map):
        return _map_items(v)
    assert isinstance(v, Set)
    return ((e.sort_key(), e, e) for e in v)


def value_changes(v1: Value, v2: Value) -> Iterator[ValueChanged]:
    """The top-level changes from ``v1`` to ``v2``, two Maps, Sets or Structs, in key order (Go's ``Diff``).

    The key is the map key, the set element or ``String(field name)``.
    """
    for key, old, new in _merge_sorted(_items(v1), _items(v2)):
        change = Change.ADDED if old is None else Change.REMOVED if new is None else Change.MODIFIED
        yield ValueChanged(change, key, old, new)


def _diff_ordered(path: tuple[PathPart, ...], last: Iterator[_Item], current: Iterator[_Item],
                  part: Callable[[Value], PathPart]) -> Iterator[Difference]:
    """Merge two key-sorted sequences of (sort key, key, value), descending into changed containers."""
    for key, old, new in _merge_sorted(last, current):
        child = path + (part(key),)
        if old is None:
            yield Difference(child, Change.ADDED, None, new)
        elif new is None:
            yield Difference(child, Change.REMOVED, old, None)
        elif should_descend(old, new):
            yield from _diff(child, old, new)
        else:
            yield Difference(child, Change.MODIFIED, old, new)


# -- printing ------------------------------------------------------------------------------------

def print_diff(w: TextWriter, v1: Value, v2: Value, commenter: Commenter | None = None) -> bool:
    """Go's ``diff.PrintDiff(w, v1, v2, true)``; returns True if a write failed."""
    if not should_descend(v1, v2):
        _line(w, DEL, None, v1, commenter)
        return _line(w, ADD, None, v2, commenter)
    err = False
    last_parent: tuple[PathPart, ...] = ()
    wrote_header, first = False, True
    for d in diff(v1, v2):
        parent = d.path[:-1]
        changed = parent != last_parent
        last_parent = parent
        if changed and wrote_header:
            wrote_header = False
            err = w.write("  }\n")
        if changed or first:
            first = False
            err = False
            if not wrote_header:
                wrote_header = True
                err = w.write((str(Path(parent)) if parent else "(root)") + " {\n")
        last_part = d.path[-1]
        parent_value = Path(parent).resolve(v1, None)
        key: Value | None = None
        printer: Callable[[TextWriter, str, Value | None, Value, Commenter | None], bool] = _line
        if isinstance(parent_value, Map):
            if isinstance(last_part, IndexPath):
                key = last_part.index
            elif isinstance(last_part, HashIndexPath):
                key = HashIndexPath(last_part.digest, into_key=True).resolve(parent_value, None)
        elif isinstance(parent_value, Struct):
            assert isinstance(last_part, FieldPath)
            key = String(last_part.name)
            printer = _field
        if d.old is not None:
            err = printer(w, DEL, key, d.old, commenter)
        if d.new is not None:
            err = printer(w, ADD, key, d.new, commenter)
        if err:
            break
    if not wrote_header:
        return False
    return w.write("  }\n")


def _op_writer(w: TextWriter, op: str) -> PrefixWriter:
    return PrefixWriter(w, lambda _: op, needs_prefix=True)


def _line(w: TextWriter, op: str, key: Value | None, value: Value, commenter: Commenter | None) -> bool:
    pw = _op_writer(w, op)
    if key is not None:
        _write_value(pw, key, commenter)
        w.write(": ")
    _write_value(pw, value, commenter)
    return w.write("\n")


def _field(w: TextWriter, op: str, name: Value | None, value: Value, commenter: Commenter | None) -> bool:
    pw = _op_writer(w, op)
    assert isinstance(name, String)
    pw.write(name.text)
    w.write(": ")
    _write_value(pw, value, commenter)
    return w.write("\n")


def _write_value(w: TextWriter, v: Value, commenter: Commenter | None) -> bool:
    if isinstance(v, Blob):
        w.write("Blob (")
        w.write(si_bytes(v.length()))
        return w.write(")")
    return write_encoded_value(w, v, commenter)


def diff_text(v1: Value, v2: Value) -> str:
    """The text ``noms diff`` prints for the difference from ``v1`` to ``v2``."""
    buf = BufferWriter()
    print_diff(buf, v1, v2)
    return buf.getvalue()

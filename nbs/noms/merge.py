"""Three-way merge of two values against their common ancestor (Go's go/merge).

Maps, sets and structs merge key by key: a change made on one side only is
taken; the same change on both sides is taken once; two different changes to
one key are merged recursively when both values are mergeable containers of
one kind, and are otherwise a conflict for the ``resolve`` callback (none: the
merge fails with Go's ``Conflict:`` message).  Lists merge splice by splice;
overlapping splices conflict unless identical.  Refs merge their targets.
``progress`` is called once per applied change, as Go's progress channel is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nbs.noms.chunker import ValueWriter
from nbs.noms.diff import Change, Splice, ValueChanged, list_splices, value_changes
from nbs.noms.edit import list_splice, map_edit, set_edit, struct_delete, struct_set
from nbs.noms.errors import NomsError
from nbs.noms.kind import PRIMITIVE_KINDS
from nbs.noms.path import FieldPath, HashIndexPath, IndexPath, Path, PathPart
from nbs.noms.printer import describe_type, encoded_value
from nbs.noms.values import List, Map, Ref, Set, String, Struct, Value, is_primitive

Resolution = tuple[Change, Value | None]
ResolveFunc = Callable[[Change, Change, Value | None, Value | None, Path], Resolution | None]


class MergeConflict(NomsError):
    """Two changes that cannot be merged (and that the resolve callback did not settle)."""


def ours(a_change: Change, b_change: Change, a: Value | None, b: Value | None, path: Path) -> Resolution:
    """Settle every conflict with the left value."""
    return a_change, a


def theirs(a_change: Change, b_change: Change, a: Value | None, b: Value | None, path: Path) -> Resolution:
    """Settle every conflict with the right value."""
    return b_change, b


def _unmergeable(a: Value | None, b: Value | None) -> bool:
    return a is None or b is None or a.kind != b.kind or a.kind in PRIMITIVE_KINDS or b.kind in PRIMITIVE_KINDS


def three_way(a: Value | None, b: Value | None, parent: Value | None, store: ValueWriter,
              resolve: ResolveFunc | None = None, progress: Callable[[], None] | None = None) -> Value | None:
    """Merge ``a`` and ``b``, both changed from ``parent``; raises ``MergeConflict``."""
    if a is None and b is None:
        return parent
    if _unmergeable(a, b):
        raise MergeConflict(f"Cannot merge {_describe(a)} with {_describe(b)}.")
    assert a is not None and b is not None
    return _Merger(store, resolve, progress).merge(a, b, parent, ())


def _describe(v: Value | None) -> str:
    return describe_type(v.type_of()) if v is not None else "nil Value"


class _Merger:
    def __init__(self, store: ValueWriter, resolve: ResolveFunc | None, progress: Callable[[], None] | None) -> None:
        self.store = store
        self.resolve = resolve
        self.progress = progress

    def tick(self) -> None:
        if self.progress is not None:
            self.progress()

    def merge(self, a: Value, b: Value, parent: Value | None, path: tuple[PathPart, ...]) -> Value:
        try:
            if isinstance(a, List) and isinstance(b, List) and (parent is None or isinstance(parent, List)):
                return self._lists(a, b, parent if parent is not None else List(0, vr=self.store))
            if isinstance(a, Ref) and isinstance(b, Ref) and (parent is None or isinstance(parent, Ref)):
                return self._refs(a, b, parent, path)
            if (isinstance(a, (Map, Set)) and type(a) is type(b) and (parent is None or type(parent) is type(a))) or (
                    isinstance(a, Struct) and isinstance(b, Struct) and a.name == b.name
                    and (parent is None or isinstance(parent, Struct))):
                return self._ordered(a, b, parent if parent is not None else _empty(a, self.store), path)
            raise MergeConflict(f"Cannot merge {_describe(a)} and {_describe(b)} on top of "
                                f"{_describe(parent) if parent is not None else '<nil>'}.")
        finally:
            self.tick()

    def _refs(self, a: Ref, b: Ref, parent: Ref | None, path: tuple[PathPart, ...]) -> Value:
        read = self.store.read_value
        a_value, b_value = read(a.target), read(b.target)
        p_value = read(parent.target) if parent is not None else None
        if a_value is None or b_value is None:
            raise MergeConflict(f"a merged ref points at a missing value: #{a.target} or #{b.target}")
        merged = self.merge(a_value, b_value, p_value, path)
        return self.store.write_value(merged)

    def _ordered(self, a: Value, b: Value, parent: Value, path: tuple[PathPart, ...]) -> Value:
        a_changes, b_changes = list(value_changes(parent, a)), list(value_changes(parent, b))
        merged, i, j = parent, 0, 0
        while i < len(a_changes) or j < len(b_changes):
            ac = a_changes[i] if i < len(a_changes) else None
            bc = b_changes[j] if j < len(b_changes) else None
            if ac is not None and (bc is None or ac.key.sort_key() < bc.key.sort_key()):
                merged, i = self._apply(merged, ac, ac.new), i + 1
                continue
            if bc is not None and (ac is None or bc.key.sort_key() < ac.key.sort_key()):
                merged, j = self._apply(merged, bc, bc.new), j + 1
                continue
            assert ac is not None and bc is not None
            i, j = i + 1, j + 1
            child = path + (_path_part(parent, ac.key),)
            if ac.change is not bc.change:
                merged = self._conflict(merged, ac, bc, child, f"Conflict:\n{_change(ac)}\nvs\n{_change(bc)}\n")
            elif ac.change is Change.REMOVED or ac.new == bc.new:
                merged = self._apply(merged, ac, ac.new)
            elif _unmergeable(ac.new, bc.new):
                assert ac.new is not None and bc.new is not None
                merged = self._conflict(merged, ac, bc, child, f"Conflict:\n{_change(ac)} = {encoded_value(ac.new)}"
                                                              f"\nvs\n{_change(bc)} = {encoded_value(bc.new)}")
            else:
                assert ac.new is not None and bc.new is not None
                merged = self._apply(merged, ac, self.merge(ac.new, bc.new, ac.old, child))
        return merged

    def _conflict(self, merged: Value, ac: ValueChanged, bc: ValueChanged, path: tuple[PathPart, ...],
                  message: str) -> Value:
        resolution = self.resolve(ac.change, bc.change, ac.new, bc.new, Path(path)) if self.resolve else None
        if resolution is None:
            raise MergeConflict(message)
        change, value = resolution
        return self._apply(merged, ValueChanged(change, ac.key, ac.old, value), value)

    def _apply(self, target: Value, change: ValueChanged, value: Value | None) -> Value:
        try:
            removed = change.change is Change.REMOVED
            if isinstance(target, Map):
                if removed:
                    return map_edit(self.store, target, removes=[change.key])
                assert value is not None
                return map_edit(self.store, target, sets=[(change.key, value)])
            if isinstance(target, Set):
                return set_edit(self.store, target, removes=[change.key]) if removed else set_edit(
                    self.store, target, inserts=[value if value is not None else change.key])
            assert isinstance(target, Struct) and isinstance(change.key, String)
            if removed:
                return struct_delete(target, change.key.text)
            assert value is not None
            return struct_set(target, change.key.text, value)
        finally:
            self.tick()

    def _lists(self, a: List, b: List, parent: List) -> List:
        a_splices, b_splices = list(list_splices(parent, a)), list(list_splices(parent, b))
        merged, offset, i, j = parent, 0, 0, 0
        while i < len(a_splices) or j < len(b_splices):
            sa = a_splices[i] if i < len(a_splices) else None
            sb = b_splices[j] if j < len(b_splices) else None
            if sa is not None and sb is not None and _overlap(sa, sb):
                if not _same_splice(a, b, sa, sb):
                    raise MergeConflict(f"Overlapping splices: {_splice_text(sa)} vs {_splice_text(sb)}")
                merged, offset = _apply_splice(self.store, a, merged, offset, sa)
                i, j = i + 1, j + 1
            elif sa is not None and (sb is None or sa.at < sb.at):
                merged, offset = _apply_splice(self.store, a, merged, offset, sa)
                i += 1
            else:
                assert sb is not None
                merged, offset = _apply_splice(self.store, b, merged, offset, sb)
                j += 1
        return merged


def _empty(like: Value, store: ValueWriter) -> Value:
    if isinstance(like, Map):
        return Map(0, vr=store)
    if isinstance(like, Set):
        return Set(0, vr=store)
    assert isinstance(like, Struct)
    return Struct(like.name, [])


def _path_part(parent: Value, key: Value) -> PathPart:
    if isinstance(parent, Struct):
        assert isinstance(key, String)
        return FieldPath(key.text)
    return IndexPath(key) if is_primitive(key) else HashIndexPath(key.hash())


def _change(change: ValueChanged) -> str:
    op = {Change.ADDED: "added", Change.MODIFIED: "modded", Change.REMOVED: "removed"}[change.change]
    return f"{op} {encoded_value(change.key)}"


def _overlap(s1: Splice, s2: Splice) -> bool:
    earlier, later = (s2, s1) if s2.at < s1.at else (s1, s2)
    return s1.at == s2.at or earlier.at + earlier.removed > later.at


def _same_splice(a: List, b: List, sa: Splice, sb: Splice) -> bool:
    if (sa.at, sa.removed, sa.added, sa.start) != (sb.at, sb.removed, sb.added, sb.start):
        return False
    return all(a.get(sa.start + k) == b.get(sb.start + k) for k in range(sa.added))


def _apply_splice(store: ValueWriter, source: List, target: List, offset: int, s: Splice) -> tuple[List, int]:
    items: Sequence[Value] = [source.get(s.start + k) for k in range(s.added)]
    return list_splice(store, target, s.at + offset, s.removed, items), offset + s.added - s.removed


def _splice_text(s: Splice) -> str:
    return f"{s.removed} elements removed at {s.at}; adding {s.added} elements"


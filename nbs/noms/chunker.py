"""Building prolly trees: the sequence chunker and the collection constructors (NOMS-VALUES.md 7).

One ``_Level`` per tree level, created lazily upward.  Items are appended at
level 0; when a level's hasher reports a boundary, the pending items become a
node, the node is written, and a meta tuple pointing at it is appended one
level up.  ``finish`` returns the canonical root node, which is *not* written
(it is inlined wherever the collection is used, or written by the caller).
Trees are history independent, so building from the full sorted item list is
all a port needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from nbs.noms.errors import EncodeError
from nbs.noms.kind import Kind
from nbs.noms.buzhash import OUT_TABLE, TABLE, WINDOW
from nbs.noms.rolling_hasher import PATTERN, RollingValueHasher
from nbs.noms.values import (Blob, Collection, List, Map, MetaTuple, Number, OrderedKey, Ref, Set, Value,
                             ValueReader)

Item = Value | tuple[Value, Value] | MetaTuple


class ValueWriter(ValueReader, Protocol):
    """Where the chunker writes the non-root nodes it creates."""

    def write_value(self, value: Value) -> Ref: ...


class _Tree:
    """Per-collection state shared by the levels: kind, store and the nodes written so far."""

    def __init__(self, kind: Kind, store: ValueWriter) -> None:
        self.kind = kind
        self.store = store
        self.written: dict[bytes, Collection] = {}

    def make_node(self, level: int, items: Sequence[Item]) -> tuple[Collection, OrderedKey, int]:
        """The node holding ``items`` at ``level``, with its ordered key and leaf count."""
        kind, store = self.kind, self.store
        node: Collection
        if level > 0:
            tuples = [t for t in items if isinstance(t, MetaTuple)]
            num_leaves = sum(t.num_leaves for t in tuples)
            if kind == Kind.LIST:
                node = List(level, tuples=tuples, vr=store)
            elif kind == Kind.SET:
                node = Set(level, tuples=tuples, vr=store)
            elif kind == Kind.MAP:
                node = Map(level, tuples=tuples, vr=store)
            else:
                node = Blob(level, tuples=tuples, vr=store)
            if kind in (Kind.LIST, Kind.BLOB):
                return node, OrderedKey(Number(num_leaves)), num_leaves
            return node, tuples[-1].key, num_leaves
        if kind == Kind.MAP:
            entries = [e for e in items if isinstance(e, tuple)]
            node = Map(0, entries, vr=store)
            key = OrderedKey.of(entries[-1][0]) if entries else OrderedKey(Number(0))
            return node, key, len(entries)
        values = [v for v in items if isinstance(v, Value)]
        if kind == Kind.LIST:
            return List(0, values, vr=store), OrderedKey(Number(len(values))), len(values)
        node = Set(0, values, vr=store)
        key = OrderedKey.of(values[-1]) if values else OrderedKey(Number(0))
        return node, key, len(values)

    def write_node(self, node: Collection, key: OrderedKey, num_leaves: int) -> MetaTuple:
        ref = self.store.write_value(node)
        self.written[bytes(ref.target)] = node
        return MetaTuple(ref, key, num_leaves)

    def load(self, t: MetaTuple) -> Collection:
        node = self.written.get(bytes(t.ref.target))
        if node is None:
            raise EncodeError(f"chunker lost track of node {t.ref.target}")
        return node


class _Level:
    __slots__ = ("tree", "level", "current", "hasher", "parent")

    def __init__(self, tree: _Tree, level: int) -> None:
        self.tree = tree
        self.level = level
        self.current: list[Item] = []
        self.hasher = RollingValueHasher(level % 256)
        self.parent: _Level | None = None

    def append(self, item: Item) -> None:
        self.current.append(item)
        hasher = self.hasher
        if isinstance(item, MetaTuple):
            hasher.hash_encoded(item.encoding())
        elif isinstance(item, tuple):
            hasher.hash_encoded(item[0].encoding())
            hasher.hash_encoded(item[1].encoding())
        else:
            hasher.hash_encoded(item.encoding())
        if hasher.crossed:
            self.boundary()

    def boundary(self) -> None:
        """Close the pending items into a written node and hand its tuple to the parent level."""
        self.hasher.reset()
        tuple_ = self.tree.write_node(*self.tree.make_node(self.level, self.current))
        self.current = []
        self.push_up(tuple_)

    def push_up(self, tuple_: MetaTuple) -> None:
        if self.parent is None:
            self.parent = _Level(self.tree, self.level + 1)
        self.parent.append(tuple_)

    def any_pending(self) -> bool:
        level: _Level | None = self
        while level is not None:
            if level.current:
                return True
            level = level.parent
        return False

    def finish(self) -> Collection:
        level = self
        while level.parent is not None and level.parent.any_pending():
            if level.current:
                level.boundary()
            level = level.parent
        if level.level == 0 or len(level.current) > 1:
            return level.tree.make_node(level.level, level.current)[0]
        only = level.current[0]
        assert isinstance(only, MetaTuple)
        while True:
            child = level.tree.load(only)
            if child.level == 0 or len(child.tuples) > 1:
                return child
            only = child.tuples[0]


def _build(kind: Kind, store: ValueWriter, items: Iterable[Item]) -> Collection:
    root = _Level(_Tree(kind, store), 0)
    for item in items:
        root.append(item)
    return root.finish()


def new_list(store: ValueWriter, items: Iterable[Value]) -> List:
    """A List of ``items`` in order; non-root nodes are written to ``store``."""
    result = _build(Kind.LIST, store, items)
    assert isinstance(result, List)
    return result


def new_set(store: ValueWriter, items: Iterable[Value]) -> Set:
    """A Set of ``items``, sorted by Noms value order and de-duplicated."""
    ordered: list[Value] = []
    for v in sorted(items, key=lambda v: v.sort_key()):
        if not ordered or ordered[-1].sort_key() != v.sort_key():
            ordered.append(v)
    result = _build(Kind.SET, store, ordered)
    assert isinstance(result, Set)
    return result


def new_map(store: ValueWriter, entries: Iterable[tuple[Value, Value]]) -> Map:
    """A Map of ``entries`` sorted by key; the last value wins for duplicate keys."""
    by_key: dict[tuple[int, object], tuple[Value, Value]] = {}
    for k, v in entries:
        by_key[k.sort_key()] = (k, v)
    ordered = [by_key[key] for key in sorted(by_key)]
    result = _build(Kind.MAP, store, ordered)
    assert isinstance(result, Map)
    return result


def new_blob(store: ValueWriter, data: bytes | Iterable[bytes]) -> Blob:
    """A Blob of ``data`` (bytes, or an iterable of byte pieces such as a file read in blocks).

    Leaves end where the raw-byte buzhash crosses a boundary (NOMS-VALUES.md
    7.7); the hash is inlined here because it runs once per byte, and pieces
    are consumed as they come, so a large file is never held in memory whole.
    """
    tree = _Tree(Kind.BLOB, store)
    leaves = _Level(tree, 0)

    def emit(leaf: bytes) -> None:
        leaves.push_up(tree.write_node(Blob(0, leaf, vr=store), OrderedKey(Number(len(leaf))), len(leaf)))

    pieces: Iterable[bytes] = [data] if isinstance(data, bytes) else data
    pending = bytearray()
    state, wpos, full, window = 0, 0, False, bytearray(WINDOW)
    for piece in pieces:
        start = 0
        for i, b in enumerate(piece):
            if wpos == WINDOW:
                full, wpos = True, 0
            state = ((state << 1) & 0xFFFFFFFF) | (state >> 31)
            if full:
                state ^= OUT_TABLE[window[wpos]]
            window[wpos] = b
            wpos += 1
            state ^= TABLE[b]
            if (state & PATTERN) == PATTERN:
                pending += piece[start:i + 1]
                emit(bytes(pending))
                pending.clear()
                start = i + 1
                state, wpos, full = 0, 0, False
        pending += piece[start:]
    if pending:
        emit(bytes(pending))
    if leaves.parent is None:
        return Blob(0, b"", vr=store)
    result = leaves.finish()
    assert isinstance(result, Blob)
    return result

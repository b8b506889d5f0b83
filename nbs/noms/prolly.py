"""Walking prolly trees (NOMS-VALUES.md 3.1): leaves in order, index and key lookup.

Children of a meta node are fetched in one batch (``read_values``, backed by
``ChunkStore.get_many``), so walking a large collection costs one round trip
per meta node rather than one per chunk.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from nbs.noms.errors import DecodeError, ValueNotFoundError
from nbs.noms.values import Collection, MetaTuple, SortKey, leaf_sort_keys


def _checked_child(parent: Collection, child: object, t: MetaTuple) -> Collection:
    if child is None:
        raise ValueNotFoundError(f"chunk {t.ref.target} (a child of a {parent.kind.label} node) is missing")
    if type(child) is not type(parent) or not isinstance(child, Collection) or child.level != parent.level - 1:
        raise DecodeError(f"chunk {t.ref.target} is not a level-{parent.level - 1} {parent.kind.label} node")
    return child


def load_child(node: Collection, t: MetaTuple) -> Collection:
    return _checked_child(node, node.reader().read_value(t.ref.target), t)


def load_children(node: Collection, start: int = 0, end: int | None = None) -> list[Collection]:
    """The child nodes of tuples ``start:end`` of a meta node, fetched in one batch."""
    tuples = node.tuples[start:end]
    found = node.reader().read_values([t.ref.target for t in tuples])
    return [_checked_child(node, found.get(t.ref.target), t) for t in tuples]


def iter_leaves(node: Collection) -> Iterator[Collection]:
    if node.level == 0:
        yield node
        return
    for child in load_children(node):
        yield from iter_leaves(child)


def leaf_at(node: Collection, index: int) -> tuple[Collection, int]:
    """The leaf holding item ``index`` (0-based) and the item's index inside that leaf."""
    if index < 0 or index >= node.length():
        raise IndexError(f"index {index} out of range for a {node.kind.label} of length {node.length()}")
    while node.level > 0:
        offsets = node.cumulative_offsets()
        i = bisect.bisect_right(offsets, index)
        if i:
            index -= offsets[i - 1]
        node = load_child(node, node.tuples[i])
    return node, index


def find_leaf(node: Collection, key: SortKey) -> tuple[Collection, int] | None:
    """The leaf and position of the Set element / Map key whose ordered key is ``key``."""
    while node.level > 0:
        keys = [t.key.sort_key() for t in node.tuples]
        i = bisect.bisect_left(keys, key)
        if i == len(keys):
            return None
        node = load_child(node, node.tuples[i])
    keys = leaf_sort_keys(node)
    i = bisect.bisect_left(keys, key)
    if i < len(keys) and keys[i] == key:
        return node, i
    return None

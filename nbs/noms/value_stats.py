"""``noms show --stats``: the shape of a value's prolly tree (Go's ``types.WriteValueStats``).

A collection prints one row per tree level, root first: the level number,
how many nodes it has, the mean number of items per node and the mean
Snappy-compressed size of a node.  Any other value prints its kind and
compressed size.
"""

from __future__ import annotations

import cramjam

from nbs.noms.humanize import comma, si_bytes
from nbs.noms.prolly import load_children
from nbs.noms.values import Collection, Value

_ROW = "{:>5}{:>20}{:>20}{:>20}\n"


def compressed_size(v: Value) -> int:
    return len(bytes(cramjam.snappy.compress_raw(v.encoding())))


def value_stats(v: Value) -> str:
    if not isinstance(v, Collection):
        return f"Kind: {v.kind.label}\nCompressedSize: {si_bytes(compressed_size(v))}\n"
    lines = [f"Kind: {v.kind.label}\n", _ROW.format("Level", "Nodes", "Values/Node", "Size/Node")]
    nodes: list[Collection] = [v]
    level = v.level
    while nodes:
        seen: set[bytes] = set()
        items = size = 0
        for node in nodes:
            items += len(node.tuples) if node.level else node.leaf_count()
            key = bytes(node.hash())
            if key not in seen:
                seen.add(key)
                size += compressed_size(node)
        lines.append(_ROW.format(level, comma(len(nodes)), f"{items / len(nodes):.1f}",
                                 si_bytes(int(size / len(nodes)))))
        nodes = [child for node in nodes if node.level for child in load_children(node)]
        level -= 1
    return "".join(lines)

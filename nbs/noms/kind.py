"""Noms kinds: the first byte of every value and type encoding (NOMS-VALUES.md 0.1)."""

from __future__ import annotations

import enum


class Kind(enum.IntEnum):
    """A kind byte; the numeric order is also the cross-kind value order."""

    BOOL = 0x00
    NUMBER = 0x01
    STRING = 0x02
    BLOB = 0x03
    VALUE = 0x04
    LIST = 0x05
    MAP = 0x06
    REF = 0x07
    SET = 0x08
    STRUCT = 0x09
    CYCLE = 0x0A
    TYPE = 0x0B
    UNION = 0x0C
    HASH = 0x0D  # only as the first byte of a hash-ordered key in a meta tuple

    @property
    def label(self) -> str:
        """The name Go prints for this kind (``Bool``, ``List``, ...)."""
        return _LABELS[self]


_LABELS = {
    Kind.BOOL: "Bool", Kind.NUMBER: "Number", Kind.STRING: "String", Kind.BLOB: "Blob",
    Kind.VALUE: "Value", Kind.LIST: "List", Kind.MAP: "Map", Kind.REF: "Ref", Kind.SET: "Set",
    Kind.STRUCT: "Struct", Kind.CYCLE: "Cycle", Kind.TYPE: "Type", Kind.UNION: "Union",
    Kind.HASH: "Hash",
}

PRIMITIVE_KINDS = frozenset({Kind.BOOL, Kind.NUMBER, Kind.STRING})
"""Kinds whose values are ordered by value and usable as path indexes and ordered keys."""

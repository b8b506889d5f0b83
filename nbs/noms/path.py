"""Relative paths into values (NOMS-VALUES.md 9.3): ``.field``, ``[index]``, ``@at(n)``, ``@key``, ...

Parsing follows Go's ``types.ParsePath`` including its error messages; a part
that does not apply to the value it meets resolves to None.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from nbs.addr import Addr
from nbs.noms.errors import PathError
from nbs.noms.printer import encoded_index_value
from nbs.noms.types import CompoundType, StructType, Type
from nbs.noms.values import (Bool, Collection, List, Map, Number, OrderedKey, Ref, Set, String, Struct, TypeValue,
                             Value, ValueReader)

_FIELD_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
_ANNOTATION_RE = re.compile(r"([a-z]+)(\(([0-9A-Za-z_\-\"']*)\))?")
_INT64_RE = re.compile(r"[+-]?[0-9]+")
_DECIMAL_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX_FLOAT_RE = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+")
_SPECIAL_FLOATS = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
                   "+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan}


class PathPart:
    """One step of a path."""

    def resolve(self, v: Value, vr: ValueReader | None) -> Value | None:
        raise NotImplementedError


@dataclass(frozen=True)
class FieldPath(PathPart):
    name: str

    def resolve(self, v: Value, vr: ValueReader | None) -> Value | None:
        if isinstance(v, Struct):
            return v.get(self.name)
        if isinstance(v, TypeValue) and isinstance(v.type, StructType):
            f = v.type.field(self.name)
            return TypeValue(f.type) if f is not None else None
        return None

    def __str__(self) -> str:
        return "." + self.name


@dataclass(frozen=True)
class IndexPath(PathPart):
    """``[42]``, ``["key"]``, ``[true]``: list index or map key; ``@key`` resolves to the key itself."""

    index: Value
    into_key: bool = False

    def resolve(self, v: Value, vr: ValueReader | None) -> Value | None:
        if isinstance(v, Map):
            if not self.into_key:
                return v.get(self.index)
            return self.index if v.has(self.index) else None
        if isinstance(v, List) or _compound_elems(v) is not None:
            if not isinstance(self.index, Number):
                return None
            f = self.index.value
            if not math.isfinite(f) or f != math.trunc(f):
                return None
            position = _absolute_index(v, int(f))
            if position is None:
                return None
            if self.into_key:
                return Number(position)
            if isinstance(v, List):
                return v.get(position)
            elems = _compound_elems(v)
            assert elems is not None
            return TypeValue(elems[position])
        return None

    def __str__(self) -> str:
        return f"[{encoded_index_value(self.index)}]" + ("@key" if self.into_key else "")


@dataclass(frozen=True)
class HashIndexPath(PathPart):
    """``[#hash]``: the Set element or Map entry whose (non-primitive) key has this hash."""

    digest: Addr
    into_key: bool = False

    def resolve(self, v: Value, vr: ValueReader | None) -> Value | None:
        key = OrderedKey(digest=self.digest)
        if isinstance(v, Set):
            return v.find(key)
        if isinstance(v, Map):
            entry = v.find(key)
            if entry is None:
                return None
            return entry[0] if self.into_key else entry[1]
        return None

    def __str__(self) -> str:
        return f"[#{self.digest}]" + ("@key" if self.into_key else "")


@dataclass(frozen=True)
class AtAnnotation(PathPart):
    """``@at(n)``: positional access (sorted order for sets and maps; negative counts from the end)."""

    index: int
    into_key: bool = False

    def resolve(self, v: Value, vr: ValueReader | None) -> Value | None:
        position = _absolute_index(v, self.index)
        if position is None:
            return None
        if isinstance(v, List):
            return None if self.into_key else v.get(position)
        if isinstance(v, Set):
            return v.at(position)
        if isinstance(v, Map):
            key, value = v.at(position)
            return key if self.into_key else value
        elems = _compound_elems(v)
        if elems is not None:
            return TypeValue(elems[position])
        return None

    def __str__(self) -> str:
        return f"@at({self.index})" + ("@key" if self.into_key else "")


@dataclass(frozen=True)
class TypeAnnotation(PathPart):
    """``@type``: the type of the value."""

    def resolve(self, v: Value, vr: ValueReader | None) -> Value | None:
        return TypeValue(v.type_of())

    def __str__(self) -> str:
        return "@type"


@dataclass(frozen=True)
class TargetAnnotation(PathPart):
    """``@target``: the value a Ref points to."""

    def resolve(self, v: Value, vr: ValueReader | None) -> Value | None:
        if isinstance(v, Ref) and vr is not None:
            return vr.read_value(v.target)
        return None

    def __str__(self) -> str:
        return "@target"


def _compound_elems(v: Value) -> list[Type] | None:
    if isinstance(v, TypeValue) and isinstance(v.type, CompoundType):
        return list(v.type.elems)
    return None


def _absolute_index(v: Value, index: int) -> int | None:
    if isinstance(v, Collection):
        length = v.length()
    else:
        elems = _compound_elems(v)
        if elems is None:
            return None
        length = len(elems)
    if index < 0:
        return length + index if -index <= length else None
    return index if index < length else None


@dataclass(frozen=True)
class Path:
    """A parsed relative path."""

    parts: tuple[PathPart, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Path:
        if not text:
            raise PathError("Empty path")
        parts: list[PathPart] = []
        rest = text
        while rest:
            rest = _parse_part(rest, parts)
        return cls(tuple(parts))

    def is_empty(self) -> bool:
        return not self.parts

    def resolve(self, v: Value | None, vr: ValueReader | None) -> Value | None:
        for part in self.parts:
            if v is None:
                break
            v = part.resolve(v, vr)
        return v

    def __str__(self) -> str:
        return "".join(str(p) for p in self.parts)


def _parse_part(text: str, parts: list[PathPart]) -> str:
    """Parse one part from the front of ``text`` into ``parts``; return what is left."""
    op, tail = text[0], text[1:]
    if op == ".":
        match = _FIELD_RE.match(tail)
        if match is None:
            raise PathError("Invalid field: " + tail)
        parts.append(FieldPath(match.group()))
        return tail[match.end():]
    if op == "[":
        if not tail:
            raise PathError("Path ends in [")
        index, digest, rest = parse_path_index(tail)
        if not rest.startswith("]"):
            raise PathError("[ is missing closing ]")
        parts.append(IndexPath(index) if index is not None else HashIndexPath(_not_none(digest)))
        return rest[1:]
    if op == "@":
        return _parse_annotation(tail, parts)
    if op == "]":
        raise PathError("] is missing opening [")
    raise PathError(f"Invalid operator: {chr(op.encode('utf-8', 'surrogateescape')[0])}")


def _not_none(digest: Addr | None) -> Addr:
    assert digest is not None
    return digest


def _parse_annotation(text: str, parts: list[PathPart]) -> str:
    match = _ANNOTATION_RE.match(text)
    if match is None:
        raise PathError("Unsupported annotation: @")
    name, has_arg, arg, rest = match.group(1), match.group(2) is not None, match.group(3) or "", text[match.end():]
    if name == "at":
        if not arg:
            raise PathError("@at annotation requires a position argument")
        if not _INT64_RE.fullmatch(arg) or not -(1 << 63) <= int(arg) < (1 << 63):
            raise PathError(f"Invalid position: {arg}")
        parts.append(AtAnnotation(int(arg)))
    elif name == "key":
        if has_arg:
            raise PathError("@key annotation does not support arguments")
        if not parts:
            raise PathError("Cannot use @key annotation at beginning of path")
        last = parts[-1]
        if not isinstance(last, (IndexPath, HashIndexPath, AtAnnotation)):
            raise PathError(f"Cannot use @key annotation on: {last}")
        parts[-1] = replace(last, into_key=True)
    elif name in ("target", "type"):
        if has_arg:
            raise PathError(f"@{name} annotation does not support arguments")
        parts.append(TargetAnnotation() if name == "target" else TypeAnnotation())
    else:
        raise PathError(f"Unsupported annotation: @{name}")
    return rest


def parse_path_index(text: str) -> tuple[Value | None, Addr | None, str]:
    """Parse the index after ``[``: a quoted string, ``true``/``false``, a number or ``#hash``.

    Returns (primitive index or None, hash or None, the unparsed rest starting at ``]``).
    """
    if text[0] == '"':
        chars: list[str] = []
        i = 1
        while i < len(text):
            c = text[i]
            if c == '"':
                i += 1
                break
            if c == "\\" and i < len(text) - 1:
                i += 1
                c = text[i]
                if c not in ('\\', '"'):
                    raise PathError('Only " and \\ can be escaped')
            chars.append(c)
            i += 1
        return String("".join(chars)), None, text[i:]
    end = text.find("]")
    index_text, rest = (text, "") if end < 0 else (text[:end], text[end:])
    if not index_text:
        raise PathError("Empty index value")
    if index_text[0] == "#":
        digest = Addr.maybe_parse(index_text[1:])
        if digest is None:
            raise PathError("Invalid hash: " + index_text[1:])
        return None, digest, rest
    if index_text in ("true", "false"):
        return Bool(index_text == "true"), None, rest
    number = parse_go_float(index_text)
    if number is None:
        raise PathError("Invalid index: " + index_text)
    return Number(number), None, rest


def parse_go_float(text: str) -> float | None:
    """Go's ``strconv.ParseFloat(text, 64)``; None where Go reports an error (including overflow)."""
    special = _SPECIAL_FLOATS.get(text.lower())
    if special is not None:
        return special
    if _DECIMAL_FLOAT_RE.fullmatch(text):
        value = float(text)
    elif _HEX_FLOAT_RE.fullmatch(text):
        value = float.fromhex(text)
    else:
        return None
    return value if math.isfinite(value) else None


"""Human-readable encoding of values and types, as ``noms show`` prints them (NOMS-VALUES.md 10.6).

``HRSWriter`` follows Go's ``hrsWriter`` closely: indentation is written lazily
at the first write of a line, the first failed write stops all later output,
and blobs are hex-dumped in 32 KiB pieces with Go's per-piece outdent quirk.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from nbs.noms.humanize import comma, si_bytes
from nbs.noms.kind import Kind
from nbs.noms.number_format import format_f, format_g
from nbs.noms.quote import go_quote
from nbs.noms.types import CompoundType, CycleType, PrimitiveType, StructType, Type, is_empty_union
from nbs.noms.values import Blob, Bool, List, Map, Number, Ref, Set, String, Struct, TypeValue, Value
from nbs.noms.writers import BufferWriter, TextWriter

_T = TypeVar("_T")

BLOB_PIECE = 32 * 1024
"""Go's ``io.Copy`` buffer: the blob hex dump receives the bytes in pieces of this size."""

Commenter = Callable[[Struct], str]


class HRSWriter:
    """Go's human-readable serializer over a ``TextWriter``."""

    def __init__(self, w: TextWriter, float_format: str = "g", commenter: Commenter | None = None) -> None:
        self.w = w
        self.ind = 0
        self.line_length = 0
        self.err = False
        self.format_number = format_g if float_format == "g" else format_f
        self.commenter = commenter

    # -- low level ----------------------------------------------------------------------------

    def _maybe_indent(self) -> None:
        if self.line_length == 0:
            if self.ind > 0 and not self.err:
                self.err = self.w.write("  " * self.ind)
            self.line_length = 2 * self.ind

    def write(self, s: str) -> None:
        if self.err:
            return
        self._maybe_indent()
        self.err = self.w.write(s)
        self.line_length += len(s)

    def new_line(self) -> None:
        self.write("\n")
        self.line_length = 0

    # -- values -------------------------------------------------------------------------------

    def _write_items(self, opening: str, closing: str, length: int, items: Iterable[_T],
                     write_item: Callable[[_T], None]) -> None:
        """A collection: one item per line, each followed by a comma, indented one level."""
        self.write(opening)
        self._write_size(length)
        self.ind += 1
        first = True
        for item in items:
            if first:
                self.new_line()
                first = False
            write_item(item)
            self.write(",")
            self.new_line()
            if self.err:
                break
        self.ind -= 1
        self.write(closing)

    def _write_entry(self, entry: tuple[Value, Value]) -> None:
        self.write_value(entry[0])
        self.write(": ")
        self.write_value(entry[1])

    def write_value(self, v: Value) -> None:
        if isinstance(v, Number):
            self.write(self.format_number(v.value))
        elif isinstance(v, String):
            self.write(go_quote(v.value))
        elif isinstance(v, Bool):
            self.write("true" if v.value else "false")
        elif isinstance(v, Struct):
            self._write_struct(v)
        elif isinstance(v, List):
            self._write_items("[", "]", v.length(), v, self.write_value)
        elif isinstance(v, Map):
            self._write_items("map {", "}", v.length(), v, self._write_entry)
        elif isinstance(v, Set):
            self._write_items("set {", "}", v.length(), v, self.write_value)
        elif isinstance(v, Ref):
            self.write("#")
            self.write(str(v.target))
        elif isinstance(v, Blob):
            self.write("blob {")
            self.err = self._write_blob_bytes(v)
            self.write("}")
        elif isinstance(v, TypeValue):
            self.write_type(v.type, set())

    def _write_size(self, n: int) -> None:
        if n >= 4:
            self.write(f"  // {comma(n)} items")

    def _write_struct(self, v: Struct) -> None:
        self.write("struct ")
        if v.name:
            self.write(v.name)
            self.write(" ")
        self.write("{")
        if self.commenter is not None:
            comment = self.commenter(v)
            if comment:
                self.write(" // " + comment)
        self.ind += 1
        if v.fields:
            self.new_line()
        for name, value in v.fields:
            self.write(name)
            self.write(": ")
            self.write_value(value)
            self.write(",")
            self.new_line()
        self.ind -= 1
        self.write("}")

    def _write_blob_bytes(self, blob: Blob) -> bool:
        """Go's hexWriter fed by io.Copy; returns the error io.Copy would report."""
        size = blob.length()
        count = 0
        size_written = False
        for piece in _pieces(blob):
            i, n = 0, len(piece)
            while i < n:
                if not size_written and n > 16:
                    self.write("  // " + si_bytes(size))
                    size_written = True
                    self.ind += 1
                    self.new_line()
                if count == 16:
                    self.new_line()
                    count = 0
                take = min(16 - count, n - i)
                self.write((" " if count else "") + piece[i:i + take].hex(" "))
                if self.err:
                    return True
                count += take
                i += take
            if size_written:
                self.ind -= 1
                self.new_line()
        return False

    # -- types --------------------------------------------------------------------------------

    def write_type(self, t: Type, seen: set[int]) -> None:
        if isinstance(t, PrimitiveType):
            self.write(t.kind.label)
        elif isinstance(t, CompoundType) and t.kind != Kind.UNION:
            self.write(t.kind.label)
            self.write("<")
            for i, elem in enumerate(t.elems):
                if is_empty_union(elem):
                    break
                if i:
                    self.write(", ")
                self.write_type(elem, seen)
                if self.err:
                    break
            self.write(">")
        elif isinstance(t, CompoundType):
            for i, member in enumerate(t.elems):
                if i:
                    self.write(" | ")
                self.write_type(member, seen)
                if self.err:
                    break
        elif isinstance(t, StructType):
            self._write_struct_type(t, seen)
        elif isinstance(t, CycleType):
            self.write(f"UnresolvedCycle<{t.name}>")

    def _write_struct_type(self, t: StructType, seen: set[int]) -> None:
        if id(t) in seen:
            self.write(f"Cycle<{t.name}>")
            return
        seen.add(id(t))
        self.write("Struct ")
        if t.name:
            self.write(t.name + " ")
        self.write("{")
        self.ind += 1
        if t.fields:
            self.new_line()
        for f in t.fields:
            self.write(f.name)
            if f.optional:
                self.write("?")
            self.write(": ")
            self.write_type(f.type, seen)
            self.write(",")
            self.new_line()
        self.ind -= 1
        self.write("}")


def _pieces(blob: Blob) -> Iterator[bytes]:
    """The blob's bytes regrouped into BLOB_PIECE-sized pieces (the last one shorter)."""
    pending = b""
    for data in blob.iter_pieces():
        pending += data
        while len(pending) >= BLOB_PIECE:
            yield pending[:BLOB_PIECE]
            pending = pending[BLOB_PIECE:]
    if pending:
        yield pending


def encoded_value(v: Value, float_format: str = "g", commenter: Commenter | None = None) -> str:
    """The human-readable text of a value (Go's ``EncodedValue``)."""
    buf = BufferWriter()
    HRSWriter(buf, float_format, commenter).write_value(v)
    return buf.getvalue()


def write_encoded_value(w: TextWriter, v: Value, commenter: Commenter | None = None) -> bool:
    """Go's ``WriteEncodedValue``: returns True if a write failed."""
    hrs = HRSWriter(w, "g", commenter)
    hrs.write_value(v)
    return hrs.err


def encoded_index_value(v: Value) -> str:
    """How a path index prints: numbers in 'f' format (``[1e4]`` prints ``[10000]``)."""
    return encoded_value(v, "f")


def describe_type(t: Type) -> str:
    """The human-readable text of a type (``Map<String, Number>``)."""
    buf = BufferWriter()
    HRSWriter(buf).write_type(t, set())
    return buf.getvalue()


# -- DateTime comments -------------------------------------------------------------------------

def datetime_commenter(tz: datetime.tzinfo | None) -> Commenter:
    """Comment ``struct DateTime {secSinceEpoch: Number}`` values with an RFC 3339 time.

    ``tz`` None means the local time zone.
    """
    def comment(v: Struct) -> str:
        if v.name != "DateTime":
            return ""
        seconds = v.get("secSinceEpoch")
        if not isinstance(seconds, Number) or not math.isfinite(seconds.value):
            return ""
        return format_rfc3339(seconds.value, tz)
    return comment


def format_rfc3339(seconds: float, tz: datetime.tzinfo | None) -> str:
    """Go's ``time.Unix(sec).In(tz).Format(time.RFC3339)`` (whole seconds, Z for UTC)."""
    whole = math.floor(seconds)
    try:
        instant = datetime.datetime.fromtimestamp(whole, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return ""
    local = instant.astimezone(tz) if tz is not None else instant.astimezone()
    offset = local.utcoffset() or datetime.timedelta(0)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    minutes = int(offset.total_seconds()) // 60
    if minutes == 0:
        return text + "Z"
    sign = "-" if minutes < 0 else "+"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"

"""Text sinks with Go ``io.Writer`` error semantics, as the ``noms log`` output needs them.

``write`` returns True when the write failed.  Failures only come from
``MaxLineWriter`` (Go's ``writers.MaxLinesErr``); Go code keeps going after
some failed writes and counts lines as it does so, and the graph prefix of the
``...`` line depends on that count, so these classes copy Go's byte-level
behaviour rather than raising.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class TextWriter(Protocol):
    def write(self, s: str) -> bool:
        """Write ``s``; True if (part of) it could not be written."""


class BufferWriter:
    """Collects everything written; never fails."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, s: str) -> bool:
        self.parts.append(s)
        return False

    def getvalue(self) -> str:
        return "".join(self.parts)


class MaxLineWriter:
    """Passes text through until ``max_lines`` newlines have been written (0 = no limit).

    Anything after the last allowed newline fails; the part before it is written.
    """

    __slots__ = ("dest", "max_lines", "num_lines")

    def __init__(self, dest: TextWriter, max_lines: int, num_lines: int) -> None:
        self.dest = dest
        self.max_lines = max_lines
        self.num_lines = num_lines

    def write(self, s: str) -> bool:
        if not s:
            return False
        if self.max_lines <= 0:
            self.num_lines += s.count("\n")
            return self.dest.write(s)
        if self.num_lines >= self.max_lines:
            return True
        pos = 0
        while True:
            nl = s.find("\n", pos)
            if nl < 0:
                break
            self.num_lines += 1
            pos = nl + 1
            if self.num_lines >= self.max_lines and pos < len(s):
                if s[pos] == "\n":
                    self.num_lines += 1
                self.dest.write(s[:pos])
                return True
        return self.dest.write(s)


class PrefixWriter:
    """Writes ``prefix_fn(self)`` before the first character of every line."""

    __slots__ = ("dest", "prefix_fn", "needs_prefix", "num_lines")

    def __init__(self, dest: TextWriter, prefix_fn: Callable[[PrefixWriter], str], needs_prefix: bool = True,
                 num_lines: int = 0) -> None:
        self.dest = dest
        self.prefix_fn = prefix_fn
        self.needs_prefix = needs_prefix
        self.num_lines = num_lines

    def write(self, s: str) -> bool:
        pos, n = 0, len(s)
        while pos < n:
            if self.needs_prefix:
                self.needs_prefix = False
                if self.dest.write(self.prefix_fn(self)):
                    return True
            nl = s.find("\n", pos)
            if nl < 0:
                return self.dest.write(s[pos:])
            if nl > pos and self.dest.write(s[pos:nl]):
                return True
            self.num_lines += 1
            self.needs_prefix = True
            if self.dest.write("\n"):
                return True
            pos = nl + 1
        return False

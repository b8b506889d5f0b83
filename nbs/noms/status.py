"""Go's ``util/status``: progress lines that repaint themselves, at most every 100 ms.

Each shown line is ``ESC[2K`` + ``\\r`` + text, written to stdout whether or not
it is a terminal, exactly as Go does.  A line asked for within 100 ms of the
last one shown is held back; ``done`` shows the held-back line, if any, then
ends the line.  The clock is injectable so tests can pin the timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import BinaryIO

CLEAR_LINE = "\x1b[2K\r"
RATE = 0.1


class Status:
    """One command's status line on ``out``."""

    def __init__(self, out: BinaryIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.clock = clock
        self._last: float | None = None
        self._pending: str | None = None

    def will_print(self) -> bool:
        return self._last is None or self.clock() - self._last >= RATE

    def printf(self, text: str) -> None:
        now = self.clock()
        if self._last is not None and now - self._last < RATE:
            self._pending = text
            return
        self._write(text)
        self._last, self._pending = now, None

    def done(self) -> None:
        if self._pending is not None:
            self._write(self._pending)
        self.out.write(b"\n")
        self.out.flush()
        self._last, self._pending = None, None

    def _write(self, text: str) -> None:
        self.out.write((CLEAR_LINE + text).encode())
        self.out.flush()

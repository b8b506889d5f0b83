"""Progress bars for long maintenance runs: shown on a terminal (stderr), silent otherwise."""

from __future__ import annotations

import sys
from typing import Protocol

from tqdm import tqdm


class Progress(Protocol):
    def update(self, n: float | None = 1) -> bool | None: ...

    def close(self) -> None: ...


class ProgressFactory(Protocol):
    def __call__(self, desc: str, total: int | None, unit: str) -> Progress: ...


def terminal_progress(desc: str, total: int | None, unit: str) -> Progress:
    """A tqdm bar on stderr when stderr is a terminal, else a bar that draws nothing."""
    scaled = unit == "B"
    return tqdm(desc=desc, total=total, unit=unit, unit_scale=scaled, unit_divisor=1024 if scaled else 1000,
                disable=not sys.stderr.isatty(), leave=False, file=sys.stderr)

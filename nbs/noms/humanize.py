"""The two go-humanize helpers Noms uses in its output: ``Bytes`` (SI sizes) and ``Comma``."""

from __future__ import annotations

import math

_SIZES = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def si_bytes(n: int) -> str:
    """``humanize.Bytes``: 9 B, 17 B, 1.6 kB, 33 kB, 3.1 MB."""
    if n < 10:
        return f"{n} B"
    e = math.floor(math.log(n) / math.log(1000))
    value = math.floor(n / 1000 ** e * 10 + 0.5) / 10
    return f"{value:.1f} {_SIZES[e]}" if value < 10 else f"{value:.0f} {_SIZES[e]}"


def comma(n: int) -> str:
    """``humanize.Comma``: 2000 -> 2,000."""
    return f"{n:,}"

"""Numbers as people read them: ``1.2 GiB``, ``3h 12m``, ``97.5%``."""

from __future__ import annotations

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(n: float) -> str:
    """Bytes with a binary unit, one decimal past bytes: ``512 B``, ``1.2 GiB``."""
    unit = 0
    while abs(n) >= 1024 and unit < len(_BINARY) - 1:
        n /= 1024
        unit += 1
    return f"{int(n)} B" if unit == 0 else f"{n:.1f} {_BINARY[unit]}"


def duration(seconds: float) -> str:
    """The two largest units: ``42s``, ``5m 3s``, ``3h 12m``, ``2d 4h``."""
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (s, "s")]
    first = next((i for i, (value, _) in enumerate(parts) if value), len(parts) - 1)
    return " ".join(f"{value}{unit}" for value, unit in parts[first:first + 2])


def ratio(part: int, whole: int) -> str:
    return "n/a" if whole == 0 else f"{part / whole:.1%}"

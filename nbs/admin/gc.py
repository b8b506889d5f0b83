"""``nbs gc``: what a collection may delete, and the report of what it did.

The rule every collector applies to every piece of garbage (unreferenced
tables, leftover temp files, stale uploads): a collector must first see it
unreferenced when it was already written more than ``min_age`` ago, and then
see it still unreferenced, in every run, until ``min_age`` after that first
sighting; a re-check just before the delete confirms it is still unreferenced
and was not written again.  So:

* a commit in progress is safe: its tables exist before the manifest names
  them, but are younger than ``min_age`` until it lands;
* a reader is safe while its view of the manifest is younger than ``min_age``:
  a table it may read was referenced after the first sighting that counts
  (sightings of a table still young do not count, because a table written
  for a commit can be named and dropped again between two runs).

Hence the operator's rule: ``min_age`` must exceed the longest commit (from
the first table written to the manifest update that names it) and the
longest-lived reader that does not rebase when a table vanishes.  Readers of
this library do rebase; Go Noms readers do not.  Garbage goes at the
earliest ``min_age`` after a run first sees it unreferenced and old enough;
``--min-age 0`` takes everything unreferenced in one run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nbs.errors import NBSError

DEFAULT_MIN_AGE = 24 * 3600.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``15m``, ``24h``, ``7d``, ``2w`` or a sum such as ``1h30m``; ``0`` alone is zero."""
    if text.strip() == "0":
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(a + u for a, u in parts) != text.strip():
        raise ValueError(f"invalid duration {text!r}: want e.g. 90s, 15m, 24h, 7d, 1h30m")
    seconds = sum(float(amount) * _UNITS[unit] for amount, unit in parts)
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {text!r}")
    return seconds


class CollectionRefusedError(NBSError):
    """``nbs gc`` will not run: what it would collect cannot be told from what is live (not a store, a bucket
    that also serves another DynamoDB table, a manifest it cannot read).  Nothing was deleted.

    Not in ``nbs.errors``: it never crosses the daemon's protocol, whose codes cover that module.
    """


@dataclass(frozen=True)
class Garbage:
    """One thing a collection may delete: ``kind`` is ``table``, ``temp file``, ``s3 object``,
    ``dynamodb item`` or ``upload``; ``name`` the table name, file name or key."""

    kind: str
    name: str
    size: int
    upload_id: str = ""

    def __str__(self) -> str:
        if self.upload_id:
            return f"{self.kind} {self.upload_id} of {self.name}"
        return f"{self.kind} {self.name} ({self.size} bytes)"

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"kind": self.kind, "name": self.name, "bytes": self.size}
        if self.upload_id:
            found["upload_id"] = self.upload_id
        return found


@dataclass
class GCReport:
    """What a run found and did; in a dry run ``deleted`` is what would be deleted."""

    location: str
    dry_run: bool
    min_age: float
    live_tables: int = 0
    deleted: list[Garbage] = field(default_factory=list)
    waiting: list[Garbage] = field(default_factory=list)
    failed: list[tuple[Garbage, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(g.size for g in self.deleted)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_json(self) -> dict[str, Any]:
        return {"location": self.location, "dry_run": self.dry_run, "min_age_seconds": self.min_age,
                "live_tables": self.live_tables, "freed_bytes": self.freed,
                "deleted": [g.to_json() for g in self.deleted], "waiting": [g.to_json() for g in self.waiting],
                "failed": [{**g.to_json(), "error": why} for g, why in self.failed], "warnings": self.warnings}


def age(candidates: Iterable[tuple[str, float]], first_seen: dict[str, float], now: float,
        min_age: float) -> tuple[dict[str, float], set[str]]:
    """Apply the rule to ``(key, written)`` candidates seen unreferenced at ``now``: returns the first-seen
    times to keep (only for candidates already ``min_age`` old; earlier ones carried over from
    ``first_seen``) and the keys ripe for deletion."""
    seen: dict[str, float] = {}
    for key, written in candidates:
        if now - written >= min_age:
            seen[key] = first_seen.get(key, now)
    return seen, {key for key, first in seen.items() if now - first >= min_age}

"""What a reload (SIGHUP) may change in a running daemon, and what waits for a restart.

The settings in ``RELOADABLE`` are read where they are used, per request or
per maintenance pass, so swapping the configuration applies them; the rest
shape what was built at start (the socket, the LMDB map, the thread pool, the
descriptor budget, CURVE) and are reported as pending until a restart.
New ``local_roots``/``aws_stores``/``allow_mem`` apply to stores opened after
the reload; sessions already open stay open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbsd.config import Config, effective

RELOADABLE = frozenset({"log_level", "local_roots", "aws_stores", "allow_mem", "cache_size", "session_ttl",
                        "max_inflight_per_client", "upload_memory"})


@dataclass
class ConfigChange:
    applied: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # key -> (old, new), shown as in logs
    pending: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # changed, but only a restart applies it

    def running(self, old: Config, new: Config) -> Config:
        """The configuration to run with: ``old`` with the reloadable changes of ``new``."""
        return old.model_copy(update={key: getattr(new, key) for key in self.applied})


def compare(old: Config, new: Config) -> ConfigChange:
    before, after = effective(old), effective(new)
    change = ConfigChange()
    for key, value in after.items():
        if value != before[key]:
            (change.applied if key in RELOADABLE else change.pending)[key] = (before[key], value)
    return change

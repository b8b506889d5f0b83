"""Health of the LMDB chunk cache, which is an optimisation only: its failures never fail a caller.

The stores hold every chunk, so an LMDB error while reading or filling the
cache (disk full, map full, I/O error, a reader table full of dead slots, a
permission change) only costs speed.  The caller serves from the store
instead; ``CacheHealth`` marks the cache "degraded: <reason>", logs the cause
at most once per ``LOG_EVERY_S`` however many requests hit it, and keeps that
kind of access (reads or writes) off the cache for ``RETRY_S``.  The next
attempt after that either recovers it (logged once) or degrades it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

READ = "read"
WRITE = "write"
RETRY_S = 5.0
LOG_EVERY_S = 60.0


class CacheHealth:
    """Failures by kind of access (``READ``, ``WRITE``): the reason and when to try again."""

    def __init__(self, log: logging.Logger, what: str, retry_s: float = RETRY_S, log_every_s: float = LOG_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._what = what
        self._retry_s = retry_s
        self._log_every_s = log_every_s
        self._clock = clock
        self._failures: dict[str, tuple[str, float]] = {}  # access -> (reason, retry at); replaced whole
        self._next_log = float("-inf")
        self._unlogged = 0
        self._lock = threading.Lock()

    def usable(self, access: str) -> bool:
        """Whether to use the cache for ``access`` now: it works, or it is time to try it again."""
        failure = self._failures.get(access)
        return failure is None or self._clock() >= failure[1]

    def failed(self, access: str, err: Exception) -> None:
        """Record a failure of ``access``: degraded until ``RETRY_S`` from now, logged if none was lately."""
        reason = f"{access} failed: {type(err).__name__}: {err}"
        now = self._clock()
        with self._lock:
            self._failures = {**self._failures, access: (reason, now + self._retry_s)}
            if now < self._next_log:
                self._unlogged += 1
                return
            self._next_log = now + self._log_every_s
            unlogged, self._unlogged = self._unlogged, 0
        more = f" ({unlogged} more failures since the last report)" if unlogged else ""
        self._log.warning("%s degraded: %s%s; serving from the stores, trying again in %gs",
                          self._what, reason, more, self._retry_s)

    def succeeded(self, access: str) -> None:
        """``access`` worked: if it had failed, the cache has recovered from that."""
        if access not in self._failures:
            return
        with self._lock:
            failures = dict(self._failures)
            if failures.pop(access, None) is None:
                return
            self._failures = failures
        self._log.info("%s recovered: %s works again", self._what, access)

    @property
    def state(self) -> str:
        """``ok``, or ``degraded: <reasons>``."""
        failures = self._failures
        if not failures:
            return "ok"
        return "degraded: " + "; ".join(reason for reason, _ in failures.values())

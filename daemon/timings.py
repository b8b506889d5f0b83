"""Request latencies by operation, as histogram buckets that a metrics scrape reads.

Recording is one bisect and three additions under a lock, cheaper than a
``prometheus_client.Histogram`` per label; the exporter turns the counts into
the cumulative buckets Prometheus expects only when it is scraped.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

# Upper bounds in seconds: from a cache hit on the daemon's thread (~100 us) to multi-minute S3 uploads.
BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
          10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass
class Series:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))  # the last is +Inf
    total: float = 0.0

    def cumulative(self) -> list[int]:
        out, running = [], 0
        for count in self.counts:
            running += count
            out.append(running)
        return out


class Timings:
    def __init__(self) -> None:
        self._series: dict[str, Series] = {}
        self._lock = threading.Lock()

    def observe(self, op: str, seconds: float) -> None:
        with self._lock:
            series = self._series.get(op)
            if series is None:
                series = self._series[op] = Series()
            series.counts[bisect.bisect_left(BOUNDS, seconds)] += 1
            series.total += seconds

    def snapshot(self) -> dict[str, Series]:
        """A copy of every operation's series, consistent with itself."""
        with self._lock:
            return {op: Series(list(s.counts), s.total) for op, s in self._series.items()}

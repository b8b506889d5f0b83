"""Store statistics: Go's log2 histograms, one per measured event.

A histogram keeps a running sum and 64 buckets (bucket = bit length - 1 of the
sample).  Times are sampled in nanoseconds.  The figures let the daemon and
benchmarks report the same things Go Noms reports.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum

BUCKETS = 64


class Unit(Enum):
    TIME = "time"
    BYTES = "bytes"
    COUNT = "count"


class Histogram:
    """A log2 histogram; sampling is not synchronised (races only blur figures)."""

    __slots__ = ("unit", "sum", "buckets")

    def __init__(self, unit: Unit = Unit.COUNT) -> None:
        self.unit = unit
        self.sum = 0
        self.buckets = [0] * BUCKETS

    def sample(self, value: int) -> None:
        if value <= 0:
            raise ValueError("histogram samples must be positive")
        self.sum += value
        bucket = value.bit_length() - 1
        self.buckets[bucket if bucket < BUCKETS else BUCKETS - 1] += 1

    def sample_time(self, started_ns: int) -> None:
        """Sample the time elapsed since ``started_ns`` (``time.perf_counter_ns``)."""
        elapsed = time.perf_counter_ns() - started_ns
        self.sample(elapsed if elapsed > 0 else 1)

    @contextmanager
    def timing(self) -> Iterator[None]:
        started = time.perf_counter_ns()
        try:
            yield
        finally:
            self.sample_time(started)

    @property
    def samples(self) -> int:
        return sum(self.buckets)

    def mean(self) -> float:
        n = self.samples
        return self.sum / n if n else 0.0

    def copy(self) -> Histogram:
        other = Histogram(self.unit)
        other.sum = self.sum
        other.buckets = list(self.buckets)
        return other

    def add(self, other: Histogram) -> None:
        self.sum += other.sum
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets)]

    def to_dict(self) -> dict[str, float | int]:
        return {"samples": self.samples, "sum": self.sum, "mean": self.mean()}

    def __str__(self) -> str:
        n = self.samples
        if n == 0:
            return "Mean: 0, Sum: 0, Samples: 0"
        mean = self.mean()
        if self.unit is Unit.TIME:
            return f"Mean: {format_duration(mean)}, Sum: {format_duration(self.sum)}, Samples: {n}"
        if self.unit is Unit.BYTES:
            return f"Mean: {humanize_bytes(int(mean))}, Sum: {humanize_bytes(self.sum)}, Samples: {n}"
        return f"Mean: {mean:.0f}, Sum: {self.sum}, Samples: {n}"


def _time() -> Histogram:
    return Histogram(Unit.TIME)


def _bytes() -> Histogram:
    return Histogram(Unit.BYTES)


@dataclass
class Stats:
    """Every statistic a store samples (NBS-FORMAT.md section 8.4)."""

    open_latency: Histogram = field(default_factory=_time)
    commit_latency: Histogram = field(default_factory=_time)
    index_read_latency: Histogram = field(default_factory=_time)
    index_bytes_per_read: Histogram = field(default_factory=_bytes)
    get_latency: Histogram = field(default_factory=_time)
    chunks_per_get: Histogram = field(default_factory=Histogram)
    file_read_latency: Histogram = field(default_factory=_time)
    file_bytes_per_read: Histogram = field(default_factory=_bytes)
    s3_read_latency: Histogram = field(default_factory=_time)
    s3_bytes_per_read: Histogram = field(default_factory=_bytes)
    mem_read_latency: Histogram = field(default_factory=_time)
    mem_bytes_per_read: Histogram = field(default_factory=_bytes)
    dynamo_read_latency: Histogram = field(default_factory=_time)
    dynamo_bytes_per_read: Histogram = field(default_factory=_bytes)
    has_latency: Histogram = field(default_factory=_time)
    addresses_per_has: Histogram = field(default_factory=Histogram)
    put_latency: Histogram = field(default_factory=_time)
    persist_latency: Histogram = field(default_factory=_time)
    bytes_per_persist: Histogram = field(default_factory=_bytes)
    chunks_per_persist: Histogram = field(default_factory=Histogram)
    compressed_chunk_bytes_per_persist: Histogram = field(default_factory=_bytes)
    uncompressed_chunk_bytes_per_persist: Histogram = field(default_factory=_bytes)
    conjoin_latency: Histogram = field(default_factory=_time)
    bytes_per_conjoin: Histogram = field(default_factory=_bytes)
    chunks_per_conjoin: Histogram = field(default_factory=Histogram)
    tables_per_conjoin: Histogram = field(default_factory=Histogram)
    read_manifest_latency: Histogram = field(default_factory=_time)
    write_manifest_latency: Histogram = field(default_factory=_time)

    def histograms(self) -> Iterator[tuple[str, Histogram]]:
        for f in dataclasses.fields(self):
            yield f.name, getattr(self, f.name)

    def copy(self) -> Stats:
        return Stats(**{name: h.copy() for name, h in self.histograms()})

    def to_dict(self) -> dict[str, dict[str, float | int]]:
        return {name: h.to_dict() for name, h in self.histograms()}

    def __str__(self) -> str:
        return "\n".join(f"{name}: {h}" for name, h in self.histograms())


def format_duration(ns: float) -> str:
    """A short human duration, like Go's ``time.Duration`` printing."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g}{unit}"
    return f"{ns:.0f}ns"


def humanize_bytes(n: int) -> str:
    """go-humanize ``Bytes``: SI units, one decimal below 10 (``131 B``, ``2.0 kB``, ``3.4 MB``)."""
    if n < 10:
        return f"{n} B"
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
    exp = 0
    value = float(n)
    while value >= 1000 and exp < len(units) - 1:
        value /= 1000
        exp += 1
    # go-humanize rounds down to one decimal, then drops it when the value is 10 or more.
    rounded = math.floor(value * 10 + 0.5) / 10
    return f"{rounded:.0f} {units[exp]}" if rounded >= 10 else f"{rounded:.1f} {units[exp]}"

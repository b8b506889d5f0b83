"""Shared benchmark plumbing: figures with baselines, percentiles, process pools, output."""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from nbs.addr import Addr
from nbs.factory import new_local_store

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Figure:
    """One measured figure, with the baseline it is compared to (measured in the same run)."""

    section: str
    name: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        ratio = f" ({figure.ratio:.2f}x {figure.baseline})" if figure.ratio is not None else ""
        progress(f"  {figure.section} / {figure.name}: {fmt(figure.value)} {figure.unit}{ratio}")
        return figure

    def table(self) -> str:
        rows = [("section", "figure", "value", "baseline", "ratio", "target", "met")]
        for f in self.figures:
            base = f"{f.baseline} = {fmt(f.baseline_value)} {f.unit}" if f.baseline_value is not None else f.baseline
            rows.append((f.section, f.name, f"{fmt(f.value)} {f.unit}", base,
                         "" if f.ratio is None else f"{f.ratio:.2f}", f.target,
                         "" if f.met is None else ("yes" if f.met else "NO")))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def write_json(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        data = {"started": self.started, "finished": time.time(), "machine": machine(),
                "figures": [{**asdict(f), "ratio": f.ratio} for f in self.figures]}
        with open(path, "w") as out:
            json.dump(data, out, indent=2)


def fmt(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def machine() -> dict[str, Any]:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()}


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@contextmanager
def environment(name: str, value: str | None) -> Iterator[None]:
    """``os.environ[name]`` set to ``value`` (None: unset) for processes started meanwhile."""
    saved = os.environ.pop(name, None)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)
        if saved is not None:
            os.environ[name] = saved


def run_parallel(fn: Callable[[T], R], args: Iterable[T]) -> list[R]:
    """Run ``fn`` once per argument, each in its own fresh process (spawn)."""
    items = list(args)
    with multiprocessing.get_context("spawn").Pool(len(items)) as pool:
        return pool.map(fn, items)


def chunk_payloads(count: int, size: int, seed: int = 0) -> Iterable[bytes]:
    """Distinct pseudo-random chunks (incompressible, like most stored bulk data after encoding)."""
    block = os.urandom(size)
    for i in range(count):
        yield (i + seed * 1_000_000_000).to_bytes(8, "big") + block[8:]


def mixed_chunks(count: int, seed: int, size: int = 4096) -> list[bytes]:
    """Distinct chunks (issue 16's data): even ones random, odd ones repetitive JSON-like records."""
    rng = random.Random(seed)
    chunks = []
    for i in range(count):
        if i % 2 == 0:
            chunks.append(rng.randbytes(size))
        else:
            rows = [{"id": i * 64 + j, "name": f"user-{i}-{j}", "active": j % 3 == 0, "tags": ["a", "b"],
                     "score": j * 7 % 101} for j in range(40)]
            chunks.append(json.dumps(rows).encode()[:size].ljust(size, b" "))
    return chunks


def populate(path: str, count: int, size: int, memtable_size: int = 0) -> list[Addr]:
    os.makedirs(path, exist_ok=True)
    store = new_local_store(path, memtable_size)
    addrs = [store.put(c) for c in chunk_payloads(count, size)]
    assert store.commit(addrs[-1], store.root())
    store.close()
    return addrs


def wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))

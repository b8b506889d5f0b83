"""Reading a daemon's /metrics over HTTP on loopback, as Prometheus would, into comparable figures."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Series = tuple[str, frozenset[tuple[str, str]]]  # sample name, labels


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scrape(address: str) -> dict[Series, float]:
    """Every sample of ``http://address/metrics`` by name and labels."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=30) as reply:
        text = reply.read().decode()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(figures: dict[Series, float], name: str, **labels: str) -> float:
    """One sample, 0 when absent (a counter not yet incremented has no series)."""
    return figures.get((name, frozenset(labels.items())), 0.0)


def moved(before: dict[Series, float], after: dict[Series, float], name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def total(figures: dict[Series, float], name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in figures.items() if n == name and wanted <= ls)

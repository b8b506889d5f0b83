"""The daemon's counters keep every addition made by threads at once (``nbsd/counts.py``)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

import pytest

from nbsd.counts import Counts, CountsByKey, Tally

THREADS = 4


@dataclass
class Figures(Counts):
    requests: int = 0
    bytes_read: int = 0


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every microsecond, so a read-modify-write split by a switch shows within a few thousand."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _at_once(work: Callable[[], None]) -> None:
    start = threading.Barrier(THREADS)

    def run() -> None:
        start.wait()
        work()

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_additions_from_threads_at_once_are_all_kept() -> None:
    figures = Figures()
    parts = [b"x" * 3, b"y" * 5]

    def work() -> None:
        for _ in range(20_000):  # a sum between the read and the write, as the daemon's byte counts have
            figures.add(requests=1, bytes_read=sum(map(len, parts)))

    _at_once(work)
    assert figures.as_dict() == {"requests": THREADS * 20_000, "bytes_read": THREADS * 20_000 * 8}


def test_a_key_first_used_by_threads_at_once_has_one_set_of_counts() -> None:
    by_key = CountsByKey(Figures)
    keys = [f"nbs:/stores/{i}" for i in range(5_000)]

    def work() -> None:
        for key in keys:
            by_key.of(key).add(requests=1)

    _at_once(work)
    assert len(by_key.items()) == len(keys)
    assert all(figures.requests == THREADS for _, figures in by_key.items())


def test_counts_are_the_dataclass_fields_and_names_are_checked() -> None:
    figures = Figures()
    figures.add(requests=2)
    assert figures.as_dict() == {f.name: getattr(figures, f.name) for f in fields(figures)} == {
        "requests": 2, "bytes_read": 0}
    with pytest.raises(AttributeError):
        figures.add(request=1)
    assert figures.requests == 2


def test_a_tally_keeps_the_first_additions_to_a_name_from_threads_at_once() -> None:
    tally = Tally()
    names = [f"op{i}" for i in range(5_000)]

    def work() -> None:
        for name in names:
            tally.add(name)

    _at_once(work)
    assert tally.as_dict() == dict.fromkeys(names, THREADS)
    assert tally["never added"] == 0 and "never added" not in tally.as_dict()

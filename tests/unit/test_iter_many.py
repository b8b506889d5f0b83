"""``iter_in_batches``: how a store's ``iter_many`` splits its reads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest

from nbs.chunk_store import iter_in_batches


class Recorder:
    """A ``get_many`` over a dict that records the addresses of each call."""

    def __init__(self, stored: dict[bytes, bytes]) -> None:
        self.stored = stored
        self.calls: list[set[bytes]] = []

    def __call__(self, addrs: Iterable[bytes]) -> dict[bytes, bytes]:
        wanted = set(addrs)
        self.calls.append(wanted)
        return {a: self.stored[a] for a in wanted if a in self.stored}


def addresses(count: int) -> list[bytes]:
    return [b"%020d" % i for i in range(count)]


def test_reads_batch_by_batch_and_only_as_far_as_consumed() -> None:
    wanted = addresses(25)
    get_many = Recorder({a: a[::-1] for a in wanted})
    taken: list[bytes] = []

    def lazily() -> Iterator[bytes]:
        for a in wanted:
            taken.append(a)
            yield a

    pairs = iter_in_batches(get_many, lazily(), batch=10)
    first = next(pairs)
    assert get_many.calls == [set(wanted[:10])] and taken == wanted[:10]
    rest = list(pairs)
    assert [len(c) for c in get_many.calls] == [10, 10, 5]
    assert dict([first, *rest]) == {a: a[::-1] for a in wanted}


def test_absent_left_out_and_repeats_read_once() -> None:
    wanted = addresses(12)
    get_many = Recorder(dict.fromkeys(wanted[::2], b"x"))
    pairs = list(iter_in_batches(get_many, wanted + wanted[:4] + [wanted[0]], batch=5))
    assert sorted(a for a, _ in pairs) == wanted[::2]
    assert [len(c) for c in get_many.calls] == [5, 5, 2]  # the last batch repeats only: no call


def test_a_batch_of_no_address_is_refused_at_the_call() -> None:
    with pytest.raises(ValueError, match="at least one address"):
        iter_in_batches(Recorder({}), addresses(3), batch=0)


def test_nothing_asked_nothing_read() -> None:
    get_many = Recorder({})
    assert list(iter_in_batches(get_many, [])) == [] and get_many.calls == []

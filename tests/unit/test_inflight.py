"""Claims on chunks being fetched: one fetch per chunk at a time, its result or error shared with waiters."""

from __future__ import annotations

import pytest

from nbsd.inflight import InflightFetches

A, B, C, D = (bytes([n]) * 20 for n in range(1, 5))
TABLE = b"t" * 20


def test_a_second_claim_waits_for_the_fetch_that_has_its_addresses() -> None:
    inflight = InflightFetches()
    mine, waiting = inflight.claim([A, B, C])
    assert mine == [A, B, C] and waiting == []
    theirs, waiting = inflight.claim([B, D, C])
    assert theirs == [D]
    assert len(waiting) == 1  # one fetch has both, so one wait
    future, addrs = waiting[0]
    assert addrs == [B, C] and not future.done()
    assert len(inflight) == 4


def test_waiters_get_what_the_fetch_found_in_a_table() -> None:
    inflight = InflightFetches()
    mine, _ = inflight.claim([A, B, C])
    _, waiting = inflight.claim([A, B, C])
    inflight.serve(mine, {A: b"a", B: b"b"}, {A: TABLE})  # B only in a memtable, C absent
    fetched = waiting[0][0].result(0)
    assert fetched.served(A) == (b"a", TABLE)
    assert fetched.served(B) is None and fetched.served(C) is None
    inflight.release(mine)
    assert len(inflight) == 0


def test_a_served_fetch_serves_new_claims_until_it_is_released() -> None:
    """Between serving and releasing (its chunks going into the cache), a new claim takes the result."""
    inflight = InflightFetches()
    mine, _ = inflight.claim([A, B])
    inflight.serve(mine, {A: b"a", B: b"b"}, {A: TABLE, B: TABLE})
    theirs, waiting = inflight.claim([B, C])
    assert theirs == [C]
    [(future, addrs)] = waiting
    assert addrs == [B] and future.result(0).served(B) == (b"b", TABLE)
    inflight.release(mine)
    assert inflight.claim([A]) == ([A], [])  # released: the next miss fetches again


def test_a_failed_fetch_fails_every_waiter_and_is_not_kept() -> None:
    inflight = InflightFetches()
    mine, _ = inflight.claim([A, B])
    _, first = inflight.claim([A])
    _, second = inflight.claim([B])
    inflight.fail(mine, OSError("backend down"))
    for waiting in (first, second):
        with pytest.raises(OSError, match="backend down"):
            waiting[0][0].result(0)
    assert inflight.claim([A, B]) == ([A, B], [])  # the next miss fetches again


def test_claims_of_separate_fetches_are_awaited_separately() -> None:
    inflight = InflightFetches()
    first, _ = inflight.claim([A])
    second, _ = inflight.claim([B])
    _, waiting = inflight.claim([A, B, C])
    assert [addrs for _, addrs in waiting] == [[A], [B]]
    inflight.serve(second, {B: b"b"}, {B: TABLE})
    assert waiting[1][0].result(0).served(B) == (b"b", TABLE)
    assert not waiting[0][0].done()
    inflight.serve(first, {}, {})
    assert waiting[0][0].result(0).served(A) is None


def test_an_address_asked_twice_is_claimed_once() -> None:
    inflight = InflightFetches()
    mine, waiting = inflight.claim([A, B, A])
    assert mine == [A, B] and waiting == []
    inflight.release(mine)
    assert len(inflight) == 0


def test_releasing_no_claim_is_harmless() -> None:
    inflight = InflightFetches()
    _, waiting = inflight.claim([])
    inflight.serve([], {}, {})
    inflight.release([])
    inflight.fail([], OSError("unused"))
    assert waiting == [] and len(inflight) == 0

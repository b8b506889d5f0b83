"""Service-level behaviour with real LMDB and local stores, driven from threads."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from nbs.addr import Addr
from nbs.factory import new_local_store
from nbsclient import protocol as p
from nbsd.cache import ChunkCache
from nbsd.config import Config
from nbsd.service import Service, StoreFigures
from nbsd.stores import StoreOpener
from tests.helpers import damage_cache_entry

GetWithOrigins = Callable[[Iterable[bytes], dict[bytes, Addr] | None], dict[bytes, bytes]]


def call(service: Service, op: str, body: dict[str, Any]) -> Any:
    reply = service.handle(b"client", p.decode_request(p.encode_request(1, op, body)))
    _, result, err = p.decode_reply(reply)
    if err is not None:
        raise err
    return result


def test_concurrent_misses_cause_one_backend_read(tmp_path: Path) -> None:
    root = tmp_path / "stores"
    store_dir = root / "s"
    store_dir.mkdir(parents=True)
    writer = new_local_store(str(store_dir))
    addrs = [writer.put(os.urandom(2000)) for _ in range(50)]
    assert writer.commit(addrs[0], writer.root())
    config = Config(cache_dir=str(tmp_path / "cache"), local_roots=[str(root)])
    service = Service(config, ChunkCache(str(tmp_path / "cache"), 64 << 20), StoreOpener(config))
    handles = [call(service, p.OPEN, {"spec": str(store_dir)})["handle"] for _ in range(4)]
    backend_calls = []
    for h in handles:
        store = service.sessions.get(h).store
        real = store.get_many_with_origins

        def slow(addrs: Iterable[bytes], origins: dict[bytes, Addr] | None,
                 real: GetWithOrigins = real) -> dict[bytes, bytes]:
            backend_calls.append(len(list(addrs)))
            time.sleep(0.3)
            return real(addrs, origins)

        store.get_many_with_origins = slow  # type: ignore[method-assign]
    replies: list[Any] = []
    barrier = threading.Barrier(4)

    def reader(handle: int) -> None:
        barrier.wait()
        replies.append(call(service, p.GET, {"handle": handle, "addrs": [bytes(a) for a in addrs]}))

    threads = [threading.Thread(target=reader, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert backend_calls == [50]
    assert all(len(r["found"]) == 50 for r in replies)
    figures = service.figures.of(service.sessions.get(handles[0]).key)
    assert figures.chunks_fetched == 50 and figures.chunks_shared == service.shared_fetches >= 50
    assert figures.chunks_from_cache + figures.chunks_fetched + figures.chunks_shared == figures.chunks_requested == 200
    service.close()
    service.cache.close()


def _served_store(tmp_path: Path, chunks: int = 3) -> tuple[Service, int, list[Addr]]:
    """A service over a local store of ``chunks`` random chunks, and an open session on it."""
    root = tmp_path / "stores"
    store_dir = root / "s"
    store_dir.mkdir(parents=True)
    writer = new_local_store(str(store_dir))
    addrs = [writer.put(os.urandom(4096)) for _ in range(chunks)]
    assert writer.commit(addrs[0], writer.root())
    config = Config(cache_dir=str(tmp_path / "cache"), local_roots=[str(root)])
    service = Service(config, ChunkCache(str(tmp_path / "cache"), 64 << 20), StoreOpener(config))
    return service, call(service, p.OPEN, {"spec": str(store_dir)})["handle"], addrs


def _compact(service: Service, frame: bytes) -> tuple[int, Any, Exception | None]:
    """The worker path's answer to a compact frame, once the cache fill behind it is done."""
    reply = p.decode_reply(service.handle(b"client", p.decode_request(frame)))
    assert service.filler.drain(5.0)
    return reply


def test_compact_get_is_answered_inline_only_from_the_cache(tmp_path: Path) -> None:
    service, handle, addrs = _served_store(tmp_path)
    expected = service.sessions.get(handle).store.get(addrs[1])
    frame = p.encode_get_one(11, handle, bytes(addrs[1]))
    assert service.get_one_inline(frame) is None  # cold: the worker path must fetch it
    assert _compact(service, frame) == (11, expected, None)
    figures = service.figures.of(service.sessions.get(handle).key)
    hits, from_cache = service.cache.counters.hits, figures.chunks_from_cache
    assert p.decode_reply(service.get_one_inline(frame) or b"") == (11, expected, None)
    assert (service.cache.counters.hits, figures.chunks_from_cache) == (hits + 1, from_cache + 1)
    service.close()
    service.cache.close()


def test_compact_get_cached_after_the_inline_miss_gets_a_compact_reply(tmp_path: Path) -> None:
    """The chunk may be cached between the inline check and the general path: the reply stays compact."""
    service, handle, addrs = _served_store(tmp_path)
    frame = p.encode_get_one(16, handle, bytes(addrs[1]))
    assert service.get_one_inline(frame) is None
    expected = service.sessions.get(handle).store.get(addrs[1])
    assert expected is not None
    table = bytes(service.sessions.get(handle).store.upstream.specs[0].name)
    service.cache.put_many([(bytes(addrs[1]), expected, table)])
    reply = service.try_inline(b"client", p.decode_request(frame))
    assert reply is not None and reply[:1] == p.COMPACT_MARK
    assert p.decode_reply(reply) == (16, expected, None)


def test_compact_get_of_an_absent_chunk_or_unknown_session(tmp_path: Path) -> None:
    service, handle, _ = _served_store(tmp_path)
    absent = p.encode_get_one(12, handle, bytes(Addr.of(b"never stored")))
    assert service.get_one_inline(absent) is None
    assert _compact(service, absent) == (12, None, None)
    stranger = p.encode_get_one(13, handle + 1000, bytes(Addr.of(b"x")))
    assert service.get_one_inline(stranger) is None
    request_id, _, err = _compact(service, stranger)
    assert request_id == 13 and isinstance(err, p.UnknownSessionError)
    assert service.get_one_inline(p.encode_get_one(14, handle, b"a" * 20)[:-1]) is None  # malformed: general path
    service.close()
    service.cache.close()


def test_compact_get_skips_a_damaged_cache_entry(tmp_path: Path) -> None:
    service, handle, addrs = _served_store(tmp_path)
    frame = p.encode_get_one(15, handle, bytes(addrs[2]))
    _, expected, _ = _compact(service, frame)
    cache = service.cache
    damage_cache_entry(cache, bytes(addrs[2]))
    assert service.get_one_inline(frame) is None
    assert _compact(service, frame) == (15, expected, None)  # dropped and fetched again
    assert cache.counters.corrupt == 1
    assert p.decode_reply(service.get_one_inline(frame) or b"") == (15, expected, None)
    service.close()
    service.cache.close()


def test_a_retried_commit_gets_its_first_outcome_without_committing_again(tmp_path: Path) -> None:
    root = tmp_path / "stores"
    store_dir = root / "s"
    store_dir.mkdir(parents=True)
    writer = new_local_store(str(store_dir))
    first, second = writer.put(b"first root"), writer.put(b"second root")
    assert writer.commit(writer.root(), writer.root())  # both chunks are now in a table
    config = Config(cache_dir=str(tmp_path / "cache"), local_roots=[str(root)])
    service = Service(config, ChunkCache(str(tmp_path / "cache"), 64 << 20), StoreOpener(config))
    handle = call(service, p.OPEN, {"spec": str(store_dir)})["handle"]
    empty = bytes(Addr(bytes(20)))

    def commit(rid: int, current: Addr, last: bytes) -> Any:
        body = {"handle": handle, "current": bytes(current), "last": last}
        request = p.decode_request(p.encode_request(rid, p.COMMIT, body))
        _, result, err = p.decode_reply(service.handle(b"client", request))
        assert err is None
        return result

    assert commit(7, first, empty)["ok"] is True
    retried = commit(7, first, empty)  # the reply was lost; the client sends the same request again
    assert retried["ok"] is True
    assert retried["contents"] == p.encode_contents(service.sessions.get(handle).store.upstream)
    assert commit(8, second, empty)["ok"] is False  # a new request with a stale last root loses
    assert service.figures.of(service.sessions.get(handle).key).commits == 1
    assert new_local_store(str(store_dir)).root() == first


def test_a_get_waits_for_hung_fetches_of_others_once_in_all(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks claimed by fetches that never end are read by the waiting request itself after
    ``WAIT_FOR_SHARED_FETCH`` in all: not that long per chunk (10 x 0.5 s) nor per fetch (2 x 0.5 s)."""
    monkeypatch.setattr("nbsd.service.WAIT_FOR_SHARED_FETCH", 0.5)
    service, handle, addrs = _served_store(tmp_path, chunks=10)
    service.inflight.claim([bytes(a) for a in addrs[:5]])  # two fetches that never finish
    service.inflight.claim([bytes(a) for a in addrs[5:]])
    started = time.monotonic()
    found = call(service, p.GET, {"handle": handle, "addrs": [bytes(a) for a in addrs]})["found"]
    assert time.monotonic() - started < 0.9
    assert sorted(found) == sorted(bytes(a) for a in addrs)
    assert service.shared_fetches == 0
    figures = service.figures.of(service.sessions.get(handle).key)
    assert (figures.chunks_fetched, figures.chunks_shared, figures.chunks_from_cache) == (10, 0, 0)  # read here
    service.close()
    service.cache.close()


def test_chunks_cached_while_a_get_waited_for_a_failed_fetch_count_as_from_cache(tmp_path: Path) -> None:
    """The fetch a get waited for failed, but the chunks reached the cache meanwhile: its re-check serves them."""
    service, handle, addrs = _served_store(tmp_path, chunks=10)
    asked = [bytes(a) for a in addrs]
    others, _ = service.inflight.claim(asked)
    origins: dict[bytes, Addr] = {}
    chunks = service.sessions.get(handle).store.get_many_with_origins(asked, origins)

    def cache_then_fail() -> None:
        time.sleep(0.2)  # the get has looked in the empty cache and waits for the other fetch
        service.cache.put_many([(a, chunks[a], bytes(origins[a])) for a in asked])
        service.inflight.fail(others, OSError("the other fetch failed"))

    threading.Thread(target=cache_then_fail).start()
    found = call(service, p.GET, {"handle": handle, "addrs": asked})["found"]
    assert found == chunks
    figures = service.figures.of(service.sessions.get(handle).key)
    assert (figures.chunks_from_cache, figures.chunks_fetched, figures.chunks_shared) == (10, 0, 0)
    assert service.cache.counters.misses == 10  # at the first look
    service.close()
    service.cache.close()


def test_a_cold_get_is_answered_before_its_cache_fill(tmp_path: Path) -> None:
    """The reply does not wait for the cache; until the fill is done, a get of the same chunks is served from
    the fetch's result, not read from the store again; stats waits for the fill."""
    service, handle, addrs = _served_store(tmp_path, chunks=4)
    asked = [bytes(a) for a in addrs]
    writing, go_on = threading.Event(), threading.Event()
    real_put_many = service.cache.put_many

    def slow_put_many(items: Iterable[tuple[bytes, bytes, bytes]]) -> None:
        writing.set()
        assert go_on.wait(10)
        real_put_many(items)

    service.cache.put_many = slow_put_many  # type: ignore[method-assign]
    first = call(service, p.GET, {"handle": handle, "addrs": asked})["found"]
    assert sorted(first) == sorted(asked) and writing.wait(5)  # answered while the fill is held up
    figures = service.figures.of(service.sessions.get(handle).key)
    again = call(service, p.GET, {"handle": handle, "addrs": asked})["found"]
    assert again == first
    assert (figures.chunks_fetched, service.shared_fetches, figures.chunks_shared) == (4, 4, 4)  # read once
    stats = p.decode_request(p.encode_request(9, p.STATS, {}))
    assert service.try_inline(b"client", stats) is None  # a worker waits for the fill, not the main thread
    go_on.set()
    assert call(service, p.STATS, {})["cache"]["entries"] == 4
    assert len(service.inflight) == 0
    service.close()
    service.cache.close()


def test_stats_while_a_store_is_first_used_does_not_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store's figures appear when a worker first serves it, which may be while stats copies them."""
    service, handle, addrs = _served_store(tmp_path)
    call(service, p.GET, {"handle": handle, "addrs": [bytes(addrs[0])]})
    real_as_dict = StoreFigures.as_dict

    def as_dict_as_a_store_is_first_used(figures: StoreFigures) -> dict[str, int]:
        service.figures.of(f"nbs:/another/store/{len(service.figures.items())}").add(get_requests=1)  # a worker's
        return real_as_dict(figures)  # first get there

    monkeypatch.setattr(StoreFigures, "as_dict", as_dict_as_a_store_is_first_used)
    stats = call(service, p.STATS, {})
    assert stats["stores"][service.sessions.get(handle).key]["chunks_requested"] == 1
    service.close()
    service.cache.close()


def test_hits_clients_report_from_threads_at_once_are_all_counted(tmp_path: Path) -> None:
    """Clients' own hits and misses are cache counters, added under its lock, in stats and its hit ratio."""
    service, handle, addrs = _served_store(tmp_path)
    call(service, p.GET, {"handle": handle, "addrs": [bytes(addrs[0])]})  # a daemon miss, then a cached read
    assert service.filler.drain(5)
    call(service, p.GET, {"handle": handle, "addrs": [bytes(addrs[0])]})
    start = threading.Barrier(4)

    def report() -> None:
        start.wait()
        for _ in range(500):
            call(service, p.REPORT, {"hits": 3, "misses": 1})

    threads = [threading.Thread(target=report) for _ in range(4)]
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch within the reports' additions, as a busy daemon's may
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(before)
    call(service, p.REPORT, {"hits": -1, "misses": 5})  # refused: a negative count adds nothing
    cache = call(service, p.STATS, {})["cache"]
    assert (cache["client_hits"], cache["client_misses"], cache["hits"], cache["misses"]) == (6000, 2000, 1, 1)
    assert cache["hit_ratio"] == round(6001 / 6002, 4)
    service.close()
    service.cache.close()

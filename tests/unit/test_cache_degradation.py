"""The LMDB cache is an optimisation only: injected LMDB errors degrade it, never a read or a write.

The environment is real, with a ``tests.lmdb_faults.FaultyEnv`` in front of
it; a fake clock steps past the retry interval without waiting.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nbs.addr import Addr
from nbs.factory import new_local_store
from nbsclient import protocol as p
from nbsclient.cache_health import RETRY_S
from nbsclient.fast_cache import ReadOnlyCache
from nbsd.cache import ChunkCache
from nbsd.config import Config
from nbsd.service import Service
from nbsd.stores import StoreOpener
from tests.lmdb_faults import DISK_FULL, READERS_FULL, Clock, faulty


def call(service: Service, op: str, body: dict[str, Any]) -> Any:
    _, result, err = p.decode_reply(service.handle(b"client", p.decode_request(p.encode_request(1, op, body))))
    if err is not None:
        raise err
    return result


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Service, int, dict[bytes, bytes]]]:
    """A service over a store of 40 chunks with an open session: (service, handle, the chunks by address)."""
    root = tmp_path / "stores"
    (root / "s").mkdir(parents=True)
    writer = new_local_store(str(root / "s"))
    chunks = {bytes(writer.put(c)): c for c in (os.urandom(3000) for _ in range(40))}
    assert writer.commit(Addr(next(iter(chunks))), writer.root())
    config = Config(cache_dir=str(tmp_path / "cache"), local_roots=[str(root)])
    service = Service(config, ChunkCache(str(tmp_path / "cache"), 64 << 20), StoreOpener(config))
    handle = call(service, p.OPEN, {"spec": str(root / "s")})["handle"]
    yield service, handle, chunks
    service.close()
    service.cache.close()


def get_all(service: Service, handle: int, chunks: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """Every chunk through each way a read reaches the daemon: worker path, inline path, compact gets."""
    found: dict[bytes, bytes] = call(service, p.GET, {"handle": handle, "addrs": list(chunks)})["found"]
    assert service.filler.drain(5.0)  # the cache fill behind that reply is done (or failed)
    request = p.decode_request(p.encode_request(2, p.GET, {"handle": handle, "addrs": list(chunks)}))
    inline = service.try_inline(b"client", request)
    if inline is not None:
        assert p.decode_reply(inline)[1]["found"] == found
    for a in chunks:
        frame = p.encode_get_one(3, handle, a)
        reply = service.get_one_inline(frame) or service.handle(b"client", p.decode_request(frame))
        assert p.decode_reply(reply) == (3, chunks[a], None)
    assert service.filler.drain(5.0)
    return found


def test_failing_fills_degrade_the_cache_and_recover(served: tuple[Service, int, dict[bytes, bytes]],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A full disk: every fill fails; reads are served from the store, logged once, until space returns."""
    service, handle, chunks = served
    clock = Clock()
    env = faulty(service.cache, clock, logging.getLogger("degradation-test"))
    env.write_error = DISK_FULL
    with caplog.at_level(logging.INFO, logger="degradation-test"):
        for _ in range(3):
            assert get_all(service, handle, chunks) == chunks
            service.cache.maintenance()
            clock.now += RETRY_S  # each round tries the cache again, and fails again
        cache = service.snapshot()["cache"]
        assert cache["state"] == f"degraded: write failed: DiskError: {DISK_FULL}"
        assert cache["entries"] == 0
        assert [r.getMessage().split(";")[0] for r in caplog.records] == [
            f"test cache degraded: write failed: DiskError: {DISK_FULL}"]
        env.write_error = None  # space came back
        assert get_all(service, handle, chunks) == chunks
        cache = service.snapshot()["cache"]
        assert (cache["state"], cache["entries"]) == ("ok", len(chunks))
        assert caplog.records[-1].getMessage() == "test cache recovered: write works again"


def test_failing_reads_fall_back_to_the_store(served: tuple[Service, int, dict[bytes, bytes]]) -> None:
    """A reader table full of dead slots: inline paths miss, the worker path reads the store."""
    service, handle, chunks = served
    assert get_all(service, handle, chunks) == chunks  # cached now
    clock = Clock()
    env = faulty(service.cache, clock, logging.getLogger("degradation-test"))
    env.read_error = READERS_FULL
    a = next(iter(chunks))
    assert service.get_one_inline(p.encode_get_one(4, handle, a)) is None
    assert get_all(service, handle, chunks) == chunks
    snapshot = service.snapshot()
    assert snapshot["cache"]["state"].startswith("degraded: read failed: ReadersFullError")
    assert snapshot["errors"] == {}
    env.read_error = None
    assert service.get_one_inline(p.encode_get_one(5, handle, a)) is None  # not retried before its time
    clock.now += RETRY_S
    assert p.decode_reply(service.get_one_inline(p.encode_get_one(6, handle, a)) or b"") == (6, chunks[a], None)
    assert service.snapshot()["cache"]["state"] == "ok"


def test_a_real_map_full_error_degrades_the_cache(tmp_path: Path) -> None:
    cache = ChunkCache(str(tmp_path / "c"), 64 << 20)
    cache.env.set_mapsize(1 << 20)  # smaller than what follows: LMDB itself refuses it
    cache.put_many([(os.urandom(20), os.urandom(3000), b"t" * 20) for _ in range(1000)])
    assert cache.health.state.startswith("degraded: write failed: MapFullError")
    assert cache.entries() == 0
    cache.close()


def test_the_client_fast_path_misses_while_it_cannot_read(tmp_path: Path) -> None:
    table = b"t" * 20
    cache = ChunkCache(str(tmp_path / "c"), 8 << 20)
    batch = [(os.urandom(20), os.urandom(3000), table) for _ in range(10)]
    cache.put_many(batch)
    info = cache.info
    cache.close()  # one open per process: the daemon is another process in real use
    reader = ReadOnlyCache({"path": info.path, "map_size": info.map_size, "max_readers": info.max_readers,
                            "cache_id": info.cache_id})
    clock = Clock()
    env = faulty(reader, clock, logging.getLogger("degradation-test"))
    env.read_error = READERS_FULL
    addrs = [a for a, _, _ in batch]
    assert reader.get(addrs[0], {table}) is None
    assert reader.get_many(addrs, {table}, {}) == addrs
    assert reader.health.state.startswith("degraded: read failed: ReadersFullError")
    env.read_error = None
    clock.now += RETRY_S
    found: dict[bytes, bytes] = {}
    assert reader.get_many(addrs, {table}, found) == [] and len(found) == 10
    assert reader.health.state == "ok"
    reader.env.close()


def test_start_warns_when_the_budget_exceeds_the_free_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(os, "statvfs", lambda path: SimpleNamespace(f_bavail=256, f_frsize=4096))  # 1 MiB free
    with caplog.at_level(logging.WARNING, logger="nbsd.cache"):
        ChunkCache(str(tmp_path / "c"), 64 << 20).close()
    assert "cache_size 67108864 bytes exceeds the " in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nbsd.cache"):
        ChunkCache(str(tmp_path / "c"), 1 << 20).close()  # 1 MiB free plus what the cache already holds
    assert caplog.text == ""

"""Service-level behaviour with real LMDB and local stores, driven from threads."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from nbs.addr import Addr
from nbs.factory import new_local_store
from nbsclient import protocol as p
from nbsd.cache import ChunkCache
from nbsd.config import Config
from nbsd.service import Service
from nbsd.stores import StoreOpener

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
    config = Config(cache_dir=str(tmp_path / "cache"), local_roots=[str(root)]).validate()
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
    assert service.inflight.shared >= 50
    service.close()
    service.cache.close()

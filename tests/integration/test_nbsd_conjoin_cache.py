"""The daemon's chunk cache survives a conjoin: chunks cached from the merged tables are served, not fetched again.

Issue 19's scenario: warm the cache with 4,000 chunks from 100 tables, commit
until the store conjoins (through the daemon, by a process writing the store
directly, or by another host of an AWS store), read the same chunks again.  The daemon's counters say how
many were fetched from the store again; a store that does not hold a chunk is
still refused it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import nbsclient
import pytest

from nbs.addr import Addr
from nbs.conjoiner import DEFAULT_MAX_TABLES
from nbs.factory import new_local_store, open_store
from nbs.file_manifest import parse_manifest
from nbs.store import NomsBlockStore
from tests.conftest import AWSLocation
from tests.daemon_harness import Daemon

pytestmark = pytest.mark.timeout(300)

TABLES = 100
PER_TABLE = 40


def table_count(path: str) -> int:
    manifest = os.path.join(path, "manifest")
    with open(manifest) as f:
        return len(parse_manifest(f.read(), manifest).specs)


def fill(store: NomsBlockStore) -> list[Addr]:
    """4,000 chunks in 100 tables, written directly."""
    addrs = []
    for t in range(TABLES):
        addrs += [store.put(b"table %d chunk %d " % (t, c) + os.urandom(200)) for c in range(PER_TABLE)]
        assert store.commit(addrs[-1], store.root())
    assert len(store.upstream.specs) == TABLES
    store.close()
    return addrs


def populate(path: str) -> list[Addr]:
    os.makedirs(path)
    return fill(new_local_store(path, sync=False))


def commit_until_conjoined(store: NomsBlockStore | nbsclient.DaemonStore, tables: Callable[[], int]) -> None:
    """One small commit at a time until the table count drops: the conjoin merged the 100 tables."""
    for i in range(DEFAULT_MAX_TABLES):
        before = tables()
        addr = store.put(b"filler %d " % i + os.urandom(16))
        assert store.commit(addr, store.root())
        if tables() < before:
            assert tables() <= 2
            return
    raise AssertionError("the store never conjoined")


def figures(daemon: Daemon, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cache's counters and the store's figures (``key``: a local path, or the end of an AWS spec)."""
    stats = daemon.stats()
    [store] = [fig for name, fig in stats["stores"].items()
               if name == f"nbs:{os.path.realpath(key)}" or name.endswith(key)]
    return stats["cache"], store


def reread_after_conjoin(daemon: Daemon, client: nbsclient.DaemonStore, key: str, addrs: list[Addr],
                         conjoin: Callable[[], None]) -> None:
    """Warm the cache, ``conjoin``, read again: at most 10% fetched again, then every read a fast-path hit."""
    first = client.get_many(addrs)
    assert len(first) == len(addrs)
    cache, store = figures(daemon, key)
    assert store["chunks_fetched"] == len(addrs) and cache["entries"] >= len(addrs)
    conjoin()
    fetched_before = store["chunks_fetched"]
    assert client.get_many(addrs) == first
    cache, store = figures(daemon, key)
    assert store["chunks_fetched"] - fetched_before <= len(addrs) // 10
    assert cache["rehomed"] >= len(addrs) * 9 // 10
    asked = store["chunks_requested"]  # re-homed entries are ordinary hits now: no request at all
    assert client.get_many(addrs) == first
    assert figures(daemon, key)[1]["chunks_requested"] == asked


@pytest.mark.parametrize("conjoiner", ["daemon", "direct writer"])
def test_cached_chunks_survive_a_local_conjoin(conjoiner: str) -> None:
    with Daemon() as daemon:
        path = daemon.store_path("conjoined")
        addrs = populate(path)
        with nbsclient.connect(path, daemon.endpoint) as client:

            def conjoin() -> None:
                if conjoiner == "daemon":
                    commit_until_conjoined(client, lambda: table_count(path))
                else:
                    direct = new_local_store(path, sync=False)
                    commit_until_conjoined(direct, lambda: table_count(path))
                    direct.close()
                    client.rebase()

            reread_after_conjoin(daemon, client, path, addrs, conjoin)


def test_cached_chunks_survive_a_conjoin_by_another_host_on_aws(nbsd_aws_daemon: Daemon,
                                                                aws_location: AWSLocation) -> None:
    name = f"conjoined-{os.getpid()}-{time.time_ns()}"
    addrs = fill(open_store(aws_location.spec(name)))
    spec = f"aws://{aws_location.table}:{aws_location.bucket}/{name}"
    with nbsclient.connect(spec, nbsd_aws_daemon.endpoint) as client:

        def conjoin() -> None:
            other_host = open_store(aws_location.spec(name))
            commit_until_conjoined(other_host, lambda: len(other_host.upstream.specs))
            other_host.close()
            client.rebase()

        reread_after_conjoin(nbsd_aws_daemon, client, "/" + name, addrs, conjoin)


def test_a_store_that_does_not_hold_a_chunk_is_still_refused_it() -> None:
    with Daemon() as daemon:
        a_path, b_path, c_path = (daemon.store_path(n) for n in ("holder", "stranger", "also-holder"))
        addrs = populate(a_path)
        secret = new_local_store(a_path).get(addrs[0])
        assert secret is not None
        with nbsclient.connect(a_path, daemon.endpoint) as a:
            assert len(a.get_many(addrs)) == len(addrs)  # cached under store A's tables
        daemon.stats()  # answered once the cache fill behind that reply is done
        with nbsclient.connect(b_path, daemon.endpoint) as b:
            b_own = b.put(b"store B's own chunk")
            assert b.commit(b_own, b.root())
            assert b.get_many(addrs[:50]) == {} and b.get(addrs[0]) is None
            assert b.has_many(addrs[:50]) == set(addrs[:50])
        cache = daemon.stats()["cache"]
        assert cache["hidden"] >= 51 and cache["rehomed"] == 0
        with nbsclient.connect(c_path, daemon.endpoint) as c:  # store C writes the same chunk to its own table
            c_addr = c.put(secret)
            assert c_addr == addrs[0] and c.commit(c_addr, c.root())
            assert c.get(addrs[0]) == secret and c.get(addrs[1]) is None
        cache, store = figures(daemon, c_path)
        assert cache["rehomed"] == 1 and store["chunks_fetched"] == 0

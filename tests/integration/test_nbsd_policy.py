"""What a daemon lets its clients do with its rights: AWS stores by allow-list, the capped mem store, and
whether clients may read its cache file.  Real daemon processes; AWS is a moto server behind a counting proxy."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbsclient
from nbs.addr import EMPTY_ADDR, compute_addr
from nbs.errors import StoreFullError, UploadError
from nbs.factory import new_local_store
from nbsclient import protocol as p
from nbsclient.connection import Connection
from tests.conftest import AWSLocation
from tests.daemon_harness import Daemon, raw_dealer
from tests.fault_proxy import FaultProxy
from tests.metrics_scrape import free_port, scrape, value
from tests.integration.test_nbsd_streamed_writes import RawSession

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def counting_proxy(aws_location: AWSLocation) -> Iterator[FaultProxy]:
    proxy = FaultProxy(aws_location.endpoint).start()
    yield proxy
    proxy.stop()


def test_aws_stores_outside_the_allow_list_are_refused_before_any_aws_call(
        aws_location: AWSLocation, counting_proxy: FaultProxy, store_name: str) -> None:
    place = f"{aws_location.table}:{aws_location.bucket}"
    patterns = [f"{place}/team-*", "other-table:*/*"]
    with Daemon(extra=["--aws-endpoint", counting_proxy.endpoint, "--aws-store", patterns[0],
                       "--aws-store", patterns[1]]) as daemon:
        refusals = {f"aws://{place}/{store_name}": f"{place}/{store_name}",
                    f"aws:{aws_location.table}/other-bucket/team-x": f"{aws_location.table}:other-bucket/team-x"}
        for spec, target in refusals.items():
            with pytest.raises(nbsclient.ForbiddenError) as err:
                nbsclient.connect(spec, daemon.endpoint)
            # The refusal said once (no repeated "Forbidden:" prefixes), with the patterns it was checked against.
            assert str(err.value) == (f"AWS store {target} matches none of the daemon's aws_stores "
                                      f"({', '.join(patterns)})")
        assert counting_proxy.forwarded == 0
        with nbsclient.connect(f"aws://{place}/team-{store_name}", daemon.endpoint) as store:
            h = store.put(b"allowed")
            assert store.commit(h, store.root())
        assert counting_proxy.forwarded > 0


def test_no_aws_store_and_no_mem_by_default(nbsd_daemon: Daemon) -> None:
    with pytest.raises(nbsclient.ForbiddenError, match=r"matches none of the daemon's aws_stores \(none allowed\)"):
        nbsclient.connect("aws://table:bucket/store", nbsd_daemon.endpoint)
    with pytest.raises(nbsclient.ForbiddenError, match="does not serve the mem store"):
        nbsclient.connect("mem", nbsd_daemon.endpoint)


def test_mem_store_is_shared_capped_and_dropped_with_its_last_session() -> None:
    with Daemon(extra=["--allow-mem", "--mem-store-size", "1MiB"]) as daemon:
        with nbsclient.connect("mem", daemon.endpoint) as one, nbsclient.connect("mem", daemon.endpoint) as two:
            h = one.put(b"in the daemon's memory")
            assert one.commit(h, one.root())
            two.rebase()
            assert two.root() == h and two.get(h) == b"in the daemon's memory"
            assert daemon.stats()["mem_store"]["bytes"] > 0
            for _ in range(300):
                two.put(os.urandom(4096))
            with pytest.raises(StoreFullError, match="cap of 1048576"):
                two.commit(h, h)
        assert daemon.stats()["mem_store"] == {"bytes": 0, "budget": 1 << 20}
        with nbsclient.connect("mem", daemon.endpoint) as fresh:
            assert fresh.root() == EMPTY_ADDR and fresh.get(h) is None


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_cache_is_group_readable_only_with_the_client_fast_path(nbsd_daemon: Daemon) -> None:
    chunks = Path(nbsd_daemon.cache_dir) / "chunks"
    assert (_mode(chunks), _mode(chunks / "data.mdb"), _mode(chunks / "lock.mdb")) == (0o750, 0o640, 0o660)
    with Daemon(extra=["--no-client-fast-path"]) as daemon:
        cache = Path(daemon.cache_dir)
        chunks = cache / "chunks"
        assert [_mode(f) for f in (cache, chunks, chunks / "data.mdb", chunks / "lock.mdb")] == [0o700, 0o700,
                                                                                               0o600, 0o600]
        with Connection(daemon.endpoint, timeout=10) as conn:
            assert conn.request(p.HELLO, {})["cache"] is None  # so clients do not even try the file
        path = daemon.store_path("private")
        os.makedirs(path)
        writer = new_local_store(path)
        addrs = [writer.put(os.urandom(1000)) for _ in range(20)]
        assert writer.commit(addrs[0], writer.root())
        with nbsclient.connect(path, daemon.endpoint) as store:
            for _ in range(2):
                assert len(store.get_many(addrs)) == 20
                daemon.stats()  # answered once the cache fill behind that reply is done
                assert all(store.get(a) is not None for a in addrs)
        cache_figures = daemon.stats()["cache"]
        # Every read was a request: the repeats were the daemon's own cache hits, none the client's.
        assert cache_figures["hits"] >= 3 * 20 and cache_figures["client_hits"] == 0


def test_tables_received_in_memory_stay_under_upload_memory(tmp_path: Path) -> None:
    """12 MiB held by one client's open upload leave room for 4 MiB: a second client's 8 MiB table is refused
    as Busy, backs off, and lands once the first upload ends.  A table past the bound on its own is refused
    for good.  Status counts the bytes and the refusals."""
    config = tmp_path / "nbsd.toml"
    config.write_text('upload_memory = "16MiB"\nmem_store_size = "128MiB"\nallow_mem = true\n')
    address = f"127.0.0.1:{free_port()}"
    with Daemon(extra=["--config", str(config), "--metrics", address]) as daemon:
        with nbsclient.connect("mem", daemon.endpoint) as store:
            with pytest.raises(UploadError, match="upload memory limit of 16777216 bytes"):
                store.put_many([os.urandom(1 << 20) for _ in range(17)])
        ctx, sock = raw_dealer(daemon.endpoint, 20000)
        try:
            holder = RawSession(sock, "mem")
            upload = holder.call(p.TABLE_BEGIN, {})["upload"]
            for seq in range(6):
                chunks = [os.urandom(1 << 20) for _ in range(2)]
                body = {"upload": upload, "seq": seq, "handle": holder.handle,
                        "lengths": p.encode_lengths([len(c) for c in chunks])}
                sock.send_multipart([p.encode_request(seq + 100, p.TABLE_CHUNKS, body), b"".join(chunks)])
                assert p.unpack(sock.recv())[2] == p.OK
            assert daemon.stats()["upload_memory"]["bytes"] >= 12 << 20
            refused = daemon.stats()["upload_memory"]["refused"]
            later = [os.urandom(1 << 20) for _ in range(8)]
            landed: dict[str, Any] = {}

            def write() -> None:
                with nbsclient.connect("mem", daemon.endpoint) as other:
                    landed["addrs"] = other.put_many(later)
                    landed["committed"] = other.commit(landed["addrs"][-1], other.root())

            writer = threading.Thread(target=write)
            writer.start()
            deadline = time.monotonic() + 30
            while daemon.stats()["upload_memory"]["refused"] == refused and time.monotonic() < deadline:
                time.sleep(0.05)
            assert daemon.stats()["upload_memory"]["refused"] > refused and "addrs" not in landed
            assert holder.call(p.TABLE_END, {"upload": upload})["count"] == 12
            writer.join(60)
            assert landed == {"addrs": [compute_addr(c) for c in later], "committed": True}
        finally:
            ctx.destroy(0)
        with nbsclient.connect("mem", daemon.endpoint) as reader:
            assert reader.get_many(landed["addrs"]) == dict(zip(landed["addrs"], later))
        stats = daemon.stats()["upload_memory"]
        assert stats["bytes"] == 0 and stats["budget"] == 16 << 20
        scraped = scrape(address)
        assert value(scraped, "nbsd_upload_memory_refusals_total") == stats["refused"] > refused
        assert value(scraped, "nbsd_upload_memory_budget_bytes") == 16 << 20
        assert value(scraped, "nbsd_upload_memory_bytes") == 0

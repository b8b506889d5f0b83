"""Pieces of nbsd's operability: units, endpoints, metrics addresses, reload rules, error texts."""

from __future__ import annotations

import pickle

import pytest

import nbsclient
from nbsclient import protocol as p
from nbsd import units
from nbsd.config import ConfigError, check_serving, load_config
from nbsd.reload import compare
from nbsd.status import StatsReplyError, render
from nbsd.timings import BOUNDS, Timings


@pytest.mark.parametrize("n,text", [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1288490188, "1.2 GiB"),
                                    (5 << 40, "5.0 TiB")])
def test_sizes(n: int, text: str) -> None:
    assert units.size(n) == text


@pytest.mark.parametrize("seconds,text", [(0, "0s"), (59.9, "59s"), (61, "1m 1s"), (11520, "3h 12m"),
                                          (3600, "1h 0m"), (90061, "1d 1h")])
def test_durations(seconds: float, text: str) -> None:
    assert units.duration(seconds) == text


@pytest.mark.parametrize("euid", [0, 1000])
def test_one_default_endpoint_for_root_and_others(monkeypatch: pytest.MonkeyPatch, euid: int) -> None:
    monkeypatch.delenv("NBSD_ENDPOINT", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    monkeypatch.setattr("os.geteuid", lambda: euid)
    assert nbsclient.default_endpoint() == "ipc:///run/nbsd/nbsd.sock"
    assert load_config(None, {}).resolved_endpoint() == "ipc:///run/nbsd/nbsd.sock"
    monkeypatch.setenv("NBSD_ENDPOINT", "ipc:///tmp/elsewhere.sock")
    assert nbsclient.default_endpoint() == "ipc:///tmp/elsewhere.sock"
    assert load_config(None, {}).resolved_endpoint() == "ipc:///tmp/elsewhere.sock"
    assert load_config(None, {"endpoint": "ipc:///tmp/flag.sock"}).resolved_endpoint() == "ipc:///tmp/flag.sock"


def test_a_bad_nbsd_endpoint_is_refused_for_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBSD_ENDPOINT", "tcp://10.0.0.1:5555")
    with pytest.raises(ConfigError, match=r"\$NBSD_ENDPOINT must be"):
        check_serving(load_config(None, {}))


@pytest.mark.parametrize("address,allowed", [("127.0.0.1:9464", True), ("[::1]:9464", True),
                                             ("localhost:9464", True), ("0.0.0.0:9464", False),
                                             ("192.168.1.2:80", False)])
def test_metrics_on_loopback_unless_allowed(address: str, allowed: bool) -> None:
    config = load_config(None, {"metrics": address})
    if allowed:
        check_serving(config)
    else:
        with pytest.raises(ConfigError, match="metrics_allow_remote"):
            check_serving(config)
        check_serving(load_config(None, {"metrics": address, "metrics_allow_remote": True}))


@pytest.mark.parametrize("address", ["9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "example.com:80",
                                     "999.1.1.1:80", "[zz]:1"])
def test_bad_metrics_addresses(address: str) -> None:
    with pytest.raises(ConfigError, match="--metrics must be HOST:PORT"):
        load_config(None, {"metrics": address}, {"metrics": "--metrics"})


def test_reload_applies_what_it_can_and_names_the_rest() -> None:
    old = load_config(None, {"local_roots": ["/srv/a"], "threads": 4, "log_level": "INFO"})
    new = load_config(None, {"local_roots": ["/srv/a", "/srv/b"], "threads": 8, "log_level": "debug",
                             "cache_size": "2GiB", "curve_secret_key": ""})
    change = compare(old, new)
    assert set(change.applied) == {"local_roots", "log_level", "cache_size"}
    assert change.pending == {"threads": (4, 8)}
    running = change.running(old, new)
    assert running.local_roots == ["/srv/a", "/srv/b"] and running.threads == 4 and running.log_level == "DEBUG"


def test_error_texts_do_not_repeat_their_prefix() -> None:
    for code in p.ERROR_CODES:
        err = p.error_from_reply(code, "local store '/x' is outside the daemon's local roots")
        text = f"{type(err).__name__}: {err}"
        assert text.count(code) <= 1 or code == "NBSError", text
    forbidden = p.error_from_reply(p.FORBIDDEN, "no")
    assert f"{type(forbidden).__name__}: {forbidden}" == "ForbiddenError: no"
    assert str(p.error_from_reply("BadRequest", "bad")) == "BadRequest: bad"


@pytest.mark.parametrize("code", [p.FORBIDDEN, p.UNKNOWN_SESSION, p.BUSY, p.BAD_REQUEST, "SomethingNew"])
def test_daemon_errors_survive_pickling(code: str) -> None:
    """Pools (multiprocessing, celery) send a worker's exception to the parent pickled."""
    err = p.error_from_reply(code, "why")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err) and str(again) == str(err) and again.kind == code  # type: ignore[attr-defined]


def test_timings_are_cumulative_histograms() -> None:
    timings = Timings()
    for seconds in (0.00005, 0.0002, 0.0002, 1000.0):
        timings.observe("get", seconds)
    series = timings.snapshot()["get"]
    cumulative = series.cumulative()
    assert cumulative[0] == 1 and cumulative[BOUNDS.index(0.00025)] == 3 and cumulative[-1] == 4
    assert series.total == pytest.approx(1000.00045)


def _stats(stores: dict[str, dict[str, int]]) -> dict[str, object]:
    figures = {"get_requests": 0, "chunks_requested": 0, "chunks_from_cache": 0, "chunks_fetched": 0,
               "chunks_shared": 0, "bytes_fetched": 0, "tables_written": 0, "bytes_written": 0, "commits": 0,
               "commits_lost": 0, "sessions": 0}
    return {
        "version": "9.9", "pid": 7, "uptime_s": 11520.0, "endpoint": "ipc:///run/nbsd/nbsd.sock", "metrics": "",
        "policy": {"local_roots": ["/srv/noms"], "aws_stores": [], "allow_mem": False}, "sessions": 2,
        "requests": {"get": 10}, "errors": {"Forbidden": 2, "StoreNotFoundError": 1}, "shared_fetches": 3,
        "cache": {"hits": 90, "client_hits": 5, "misses": 5, "evictions": 0, "corrupt": 0, "bytes": 1288490188,
                  "budget": 8 << 30, "entries": 3, "state": "degraded: write failed: MapFullError: full",
                  "fill_pending_bytes": 0, "fills_deferred": 12, "fills_inline": 1},
        "index_cache": {"bytes": 0, "budget": 64 << 20, "tables": 0},
        "small_table_cache": {"bytes": 3 << 20, "budget": 32 << 20, "tables": 40},
        "open_files": {"tables": 3, "table_budget": 232, "budget": 256, "reserved": 8, "threads": 16, "fds": 40,
                       "limit": 4096},
        "memory": {"rss": 50 << 20, "threads": 21, "heap_in_use": 30 << 20, "heap_free": 2 << 20},
        "chunk_workers": {"running": 1, "configured": 2, "failures": 3},
        "upload_memory": {"bytes": 12 << 20, "budget": 1 << 30, "refused": 4},
        "chunk_parts": {"parts_socket": "/run/nbsd/nbsd.sock.parts", "shared_memory": 40, "socket": 2,
                        "memories": 3, "most_memories": 256, "memory_bytes": 30 << 20,
                        "most_memory_bytes": 1 << 30},
        "backend": {"requests": {}, "errors": {}},
        "stores": {key: {**figures, **fig} for key, fig in stores.items()},
    }


def test_status_page() -> None:
    stores = {f"nbs:/srv/noms/{i}": {"get_requests": i} for i in range(10)}
    stores["nbs:/srv/noms/9"] |= {"chunks_requested": 40, "chunks_from_cache": 5, "chunks_fetched": 20,
                                  "bytes_fetched": 2048, "chunks_shared": 15}
    text = render(_stats(stores), top=2)
    assert text.startswith("nbsd 9.9, pid 7, up 3h 12m, on ipc:///run/nbsd/nbsd.sock\n")
    assert "cache: degraded: write failed: MapFullError: full; 1.2 GiB of 8.0 GiB, 3 chunks; hit ratio 95.0%" in text
    assert ("(90 daemon hits, 5 client hits, 5 misses, 3 of them served from another request's read in flight)"
            in text)
    assert ("nbs:/srv/noms/9: 0 sessions, 40 chunks asked (5 from cache, 20 fetched, 2.0 KiB, 15 from others' reads)"
            in text)
    assert "0 evicted, 0 corrupt; fills 12 behind replies, 1 in them\n" in text
    assert "errors: Forbidden 2, StoreNotFoundError 1" in text
    assert "open files: 3 table files of 232 allowed (max_open_files 256 - 8 reserved - 16 threads)" in text
    assert "small tables: 3.0 MiB of 32.0 MiB, 40 tables" in text
    assert "memory: 50.0 MiB resident, 21 threads; malloc heap 30.0 MiB in use, 2.0 MiB free" in text
    assert "chunk workers: 1 running of 2, 3 failed" in text
    assert "uploads in memory: 12.0 MiB of 1.0 GiB, 4 parts refused as Busy" in text
    assert ("parts of chunks received: 40 in clients' part memory, 2 through the socket (3 part memories mapped "
            "of 256, 30.0 MiB of 1.0 GiB, taken at /run/nbsd/nbsd.sock.parts)") in text
    assert "busiest stores (2 of 10):\n  nbs:/srv/noms/9: " in text and "nbs:/srv/noms/7" not in text


def test_a_status_page_of_a_daemon_before_part_memory_has_no_parts_line() -> None:
    stats = _stats({})
    del stats["chunk_parts"]
    text = render(stats)
    assert "parts of chunks" not in text and "chunk workers: 1 running of 2" in text


def test_a_status_page_of_a_daemon_before_shared_figures_per_store_leaves_them_out() -> None:
    stats = _stats({"nbs:/srv/noms/a": {"get_requests": 1, "chunks_requested": 8, "chunks_fetched": 8}})
    del stats["stores"]["nbs:/srv/noms/a"]["chunks_shared"]  # type: ignore[index]
    text = render(stats)
    assert "nbs:/srv/noms/a: 0 sessions, 8 chunks asked (0 from cache, 8 fetched, 0 B), 0 tables written" in text


@pytest.mark.parametrize("damage", ["drop cache", "cache is a list", "hits is text"])
def test_a_stats_reply_the_page_cannot_read_is_a_typed_error_naming_the_field(damage: str) -> None:
    stats = _stats({})
    if damage == "drop cache":
        del stats["cache"]
    elif damage == "cache is a list":
        stats["cache"] = [1, 2]
    else:
        stats["cache"]["hits"] = "many"  # type: ignore[index]
    with pytest.raises(StatsReplyError, match="stats reply cannot be shown .*nbsd stats"):
        render(stats)

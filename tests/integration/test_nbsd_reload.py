"""SIGHUP: a running daemon re-reads its config file, applies what it can and names what waits for a restart."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

import nbsclient
from tests.daemon_harness import Daemon

pytestmark = pytest.mark.timeout(180)


def _wait_for_log(daemon: Daemon, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while text not in (log := daemon.log.read_text()):
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{log}"
        time.sleep(0.1)
    return log


def _configured_daemon(config: Path) -> Daemon:
    """A harness daemon whose roots and cache budget come from ``config`` (flags would override the file)."""
    daemon = Daemon(extra=["--config", str(config)])
    args, daemon.args = daemon.args, []
    pairs = iter(args)
    for arg in pairs:
        if arg in ("--local-root", "--cache-size"):
            next(pairs)
        else:
            daemon.args.append(arg)
    return daemon


def test_sighup_reloads_what_it_can_and_names_the_rest(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    config = tmp_path / "nbsd.toml"
    daemon = _configured_daemon(config)
    config.write_text(f'log_level = "INFO"\nthreads = 16\ncache_size = "256MiB"\nlocal_roots = ["{daemon.stores}"]\n')
    with daemon:
        with pytest.raises(nbsclient.ForbiddenError):
            nbsclient.connect(str(extra / "db"), daemon.endpoint)
        config.write_text(f'log_level = "DEBUG"\nthreads = 4\ncache_size = "128MiB"\nupload_memory = "64MiB"\n'
                          f'local_roots = ["{daemon.stores}", "{extra}"]\n')
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        log = _wait_for_log(daemon, "reload: threads changed")
        with nbsclient.connect(str(extra / "db"), daemon.endpoint) as store:  # the new root applies at once
            assert store.commit(store.put(b"allowed after the reload"), store.root())
        stats = daemon.stats()
        assert stats["policy"]["local_roots"] == [daemon.stores, str(extra)]
        assert stats["cache"]["budget"] == 128 << 20 and stats["open_files"]["threads"] == 16
        assert stats["upload_memory"]["budget"] == 64 << 20

        config.write_text("threads = [")  # a broken file changes nothing
        daemon.proc.send_signal(signal.SIGHUP)
        log = _wait_for_log(daemon, "reload refused, the running configuration stays: cannot read config")
        assert daemon.stats()["policy"]["local_roots"] == [daemon.stores, str(extra)]
    assert daemon.proc.returncode == 0  # SIGTERM still stops it cleanly
    roots = json.dumps([daemon.stores])
    assert f"reload: local_roots changed from {roots} to {json.dumps([daemon.stores, str(extra)])}" in log
    assert 'reload: log_level changed from "INFO" to "DEBUG"' in log
    assert f"reload: cache_size changed from {256 << 20} to {128 << 20}" in log
    assert f"reload: upload_memory changed from {1 << 30} to {64 << 20}" in log
    assert "reload: threads changed to 4 in the configuration, but only a restart applies it; still 16" in log
    assert " DEBUG " in log.split("reload: threads changed", 1)[1]  # DEBUG lines appear from the reload on


def test_sighup_with_an_unchanged_file_says_so(nbsd_daemon: Daemon) -> None:
    assert nbsd_daemon.proc is not None
    nbsd_daemon.proc.send_signal(signal.SIGHUP)
    _wait_for_log(nbsd_daemon, "reload: the configuration is unchanged")
    assert nbsd_daemon.proc.poll() is None and nbsd_daemon.stats()["pid"] == nbsd_daemon.pid

"""The ``nbsd`` command as a person meets it: subcommands, --version, the endpoint it finds, status."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

import nbsclient
from tests.daemon_harness import ROOT, Daemon

pytestmark = pytest.mark.timeout(300)


def nbsd(*args: str, env: dict[str, str] | None = None, **run: Any) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "NBSD_ENDPOINT"}
    return subprocess.run([sys.executable, "-m", "nbsd", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**environ, **(env or {})}, **run)


def test_version_comes_from_the_package_metadata() -> None:
    proc = nbsd("--version")
    assert proc.returncode == 0 and proc.stdout == f"nbsd {version('nbs-aws')}\n"


def test_bare_nbsd_prints_help_and_serves_nothing(tmp_path: Path) -> None:
    proc = nbsd()
    assert proc.returncode == 2 and proc.stdout == ""
    for command in ("serve", "status", "stats", "check-config", "demo", "keygen"):
        assert command in proc.stderr


def test_each_subcommand_has_only_its_own_flags() -> None:
    serve = nbsd("serve", "--help").stdout
    assert "--cache-size" in serve and "--metrics" in serve and "--json" not in serve and "--clients" not in serve
    status = nbsd("status", "--help").stdout
    assert "--json" in status and "--timeout" in status and "--cache-size" not in status
    refused = nbsd("status", "--cache-size", "1GiB")
    assert refused.returncode == 2 and refused.stderr == "nbsd: unrecognized arguments: --cache-size 1GiB\n"


def test_check_config_prints_the_effective_settings_without_secrets(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert subprocess.run([sys.executable, "-m", "nbsd", "keygen", "--dir", str(keys)], cwd=ROOT,
                          capture_output=True, timeout=60).returncode == 0
    config = tmp_path / "nbsd.toml"
    config.write_text(f'cache_size = "2GiB"\nlocal_roots = ["{tmp_path}"]\n'
                      f'curve_secret_key = "{keys}/nbsd.key_secret"\n'
                      f'curve_client_keys = "{keys}"\nmetrics = "127.0.0.1:9464"\n')
    proc = nbsd("check-config", "--config", str(config), "--threads", "4")
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" = ", 1) for line in proc.stdout.splitlines())
    assert lines["cache_size"] == str(2 << 30) and lines["threads"] == "4" and lines["curve_secret_key"] == '"(set)"'
    assert lines["endpoint"] == '"ipc:///run/nbsd/nbsd.sock"' and "key_secret" not in proc.stdout
    bad = nbsd("check-config", "--config", str(config), "--metrics", "10.1.2.3:80")
    assert bad.returncode == 2 and "is not a loopback address" in bad.stderr


def test_every_subcommand_and_noms_honour_nbsd_endpoint(nbsd_daemon: Daemon, tmp_path: Path) -> None:
    env = {"NBSD_ENDPOINT": nbsd_daemon.endpoint}
    stats = nbsd("stats", env=env)
    assert stats.returncode == 0 and json.loads(stats.stdout)["pid"] == nbsd_daemon.pid
    status = nbsd("status", env=env)
    assert status.returncode == 0 and f", pid {nbsd_daemon.pid}, " in status.stdout
    shown = nbsd("check-config", env=env)
    assert f'endpoint = "{nbsd_daemon.endpoint}"' in shown.stdout
    db = nbsd_daemon.store_path("via-env")
    noms = subprocess.run([sys.executable, "-m", "nbs.noms.cli", "--nbsd", "default", "ds", db], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert noms.returncode == 0 and noms.stdout == "" and noms.stderr == ""
    assert os.path.isdir(db)  # the daemon at $NBSD_ENDPOINT opened (and so created) it
    serve = nbsd("serve", "--cache-dir", str(tmp_path / "cache"), env={"NBSD_ENDPOINT": nbsd_daemon.endpoint})
    assert serve.returncode == 1 and "another nbsd" in serve.stderr  # serve listens where $NBSD_ENDPOINT says


def test_status_is_for_people_and_json_keeps_everything() -> None:
    with Daemon() as nbsd_daemon:  # its own: the busiest stores of a shared daemon are other tests'
        _status_of_a_known_workload(nbsd_daemon)


def _status_of_a_known_workload(nbsd_daemon: Daemon) -> None:
    for n in range(8):
        path = nbsd_daemon.store_path(f"status-{n}")
        with nbsclient.connect(path, nbsd_daemon.endpoint) as store:
            for _ in range(n):
                store.put(os.urandom(100))
                store.commit(store.put(os.urandom(10)), store.root())
    status = nbsd("status", "--socket", nbsd_daemon.socket, "--top", "3")
    assert status.returncode == 0, status.stderr
    text = status.stdout
    assert text.startswith(f"nbsd {version('nbs-aws')}, pid {nbsd_daemon.pid}, up ")
    assert re.search(r"up (\d+s|\d+m \d+s|\d+h \d+m)", text)
    assert f"local roots: {nbsd_daemon.stores}" in text
    assert re.search(r"cache: ok; [\d.]+ (B|KiB|MiB) of 256.0 MiB", text)
    assert re.search(r"open files: \d+ table files of 40 allowed \(max_open_files 64 - 8 reserved - 16 threads\)",
                     text)
    assert "busiest stores (3 of " in text
    listed = re.findall(r"^  nbs:\S+/status-(\d+):", text, re.M)
    assert listed == ["7", "6", "5"]  # the most commits first; idle stores are left out
    full = json.loads(nbsd("status", "--json", "--socket", nbsd_daemon.socket).stdout)
    busy = {f"nbs:{os.path.realpath(nbsd_daemon.store_path(f'status-{n}'))}" for n in range(1, 8)}
    assert busy <= set(full["stores"])
    assert full["version"] == version("nbs-aws") and full["policy"]["local_roots"] == [nbsd_daemon.stores]


def test_start_up_logs_version_and_effective_config_without_secrets(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    subprocess.run([sys.executable, "-m", "nbsd", "keygen", "--dir", str(keys)], cwd=ROOT, capture_output=True,
                   timeout=60, check=True)
    with Daemon(extra=["--curve-secret-key", str(keys / "nbsd.key_secret"), "--curve-client-keys", str(keys)],
                env={"NBSD_CURVE_SECRET_KEY": str(keys / "nbsd.key_secret"),
                     "NBSD_CURVE_SERVER_KEY": str(keys / "nbsd.key")}) as daemon:
        log = daemon.log.read_text()
        secret = (keys / "nbsd.key_secret").read_text()
    started = [line for line in log.splitlines() if f"nbsd {version('nbs-aws')} started, pid {daemon.pid}" in line]
    assert len(started) == 1, log
    config = json.loads(started[0].split(" config ", 1)[1])
    assert config["endpoint"] == daemon.endpoint and config["curve_secret_key"] == "(set)"
    assert "key_secret" not in log and not any(line.strip() in log for line in secret.splitlines()
                                               if "key" in line and "=" in line)

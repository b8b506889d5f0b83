"""nbsd on tcp:// with CURVE: a real daemon process, real sockets, real key files made by ``nbsd keygen``.

An allowed key is served; an unknown key, a plaintext client and a client with
the wrong server key are refused with ``AuthenticationError`` at once (not a
timeout); a daemon on tcp:// without keys does not start.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import nbsclient
from nbsclient.curve import SECRET_KEY_ENV, SERVER_KEY_ENV, AuthenticationError, ClientKeys
from nbsd.cli import main as nbsd_main
from tests.daemon_harness import ROOT, Daemon

pytestmark = pytest.mark.timeout(300)


@dataclass(frozen=True)
class Keys:
    """Key files: the daemon's pair, an allowed client, a client the daemon does not know."""

    dir: Path
    server_public: str
    server_secret: str
    clients: str
    allowed_secret: str
    unknown_public: str
    unknown_secret: str

    def client(self, secret: str, server: str | None = None) -> ClientKeys:
        return ClientKeys.from_files(secret, server or self.server_public)


def _keygen(directory: Path, name: str) -> tuple[str, str]:
    assert nbsd_main(["keygen", "--dir", str(directory), "--name", name]) == 0
    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    assert public.stat().st_mode & 0o777 == 0o644 and secret.stat().st_mode & 0o777 == 0o600
    return str(public), str(secret)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    base = tmp_path_factory.mktemp("curve")
    clients = base / "clients"
    server_public, server_secret = _keygen(base / "server", "nbsd")
    _, allowed_secret = _keygen(clients, "worker")  # its public key lands in the allowed directory
    unknown_public, unknown_secret = _keygen(base / "other", "stranger")
    return Keys(base, server_public, server_secret, str(clients), allowed_secret, unknown_public, unknown_secret)


@pytest.fixture(scope="module")
def tcp_daemon(keys: Keys) -> Iterator[Daemon]:
    with Daemon(endpoint=f"tcp://127.0.0.1:{_free_port()}",
                extra=["--curve-secret-key", keys.server_secret, "--curve-client-keys", keys.clients]) as daemon:
        yield daemon


@pytest.fixture(autouse=True)
def no_key_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    monkeypatch.delenv(SERVER_KEY_ENV, raising=False)


def test_allowed_key_is_served(tcp_daemon: Daemon, keys: Keys) -> None:
    path = tcp_daemon.store_path("curve-allowed")
    with nbsclient.connect(path, tcp_daemon.endpoint, curve_keys=keys.client(keys.allowed_secret)) as store:
        h = store.put(b"over CURVE")
        assert store.commit(h, store.root())
        assert store.get(h) == b"over CURVE"


def test_keys_from_the_environment(tcp_daemon: Daemon, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, keys.allowed_secret)
    monkeypatch.setenv(SERVER_KEY_ENV, keys.server_public)
    with nbsclient.connect(tcp_daemon.store_path("curve-env"), tcp_daemon.endpoint) as store:
        assert store.count() == 0
    status = subprocess.run([sys.executable, "-m", "nbsd", "status", "--endpoint", tcp_daemon.endpoint],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and f"pid {tcp_daemon.pid}" in status.stdout
    monkeypatch.delenv(SECRET_KEY_ENV)
    monkeypatch.delenv(SERVER_KEY_ENV)
    refused = subprocess.run([sys.executable, "-m", "nbsd", "status", "--endpoint", tcp_daemon.endpoint],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"nbsd: the daemon at {tcp_daemon.endpoint} refused the connection: ")


@pytest.mark.parametrize("who,reason", [
    ("unknown key", "does not know this client's public key"),
    ("plaintext", f"requires CURVE keys and this client has none (set {SECRET_KEY_ENV} and {SERVER_KEY_ENV})"),
    ("wrong server key", f"is {SERVER_KEY_ENV} the daemon's public key"),
])
def test_refused_clients_fail_at_once_with_the_reason(tcp_daemon: Daemon, keys: Keys, who: str,
                                                      reason: str) -> None:
    chosen = {"unknown key": keys.client(keys.unknown_secret), "plaintext": None,
              "wrong server key": keys.client(keys.allowed_secret, keys.unknown_public)}[who]
    with pytest.raises(AuthenticationError) as err:
        # Default timeout and retries: without the monitor's verdict this would wait minutes and then say
        # DaemonUnavailableError, which the assertion on the type would catch.
        nbsclient.connect(tcp_daemon.store_path("curve-refused"), tcp_daemon.endpoint, curve_keys=chosen)
    assert str(err.value).startswith(f"the daemon at {tcp_daemon.endpoint} refused the connection: ")
    assert reason in str(err.value)
    if who == "unknown key":  # the daemon says whom it refused (the others fail before its key check)
        assert chosen is not None
        assert f"refused a client with CURVE key {chosen.public.decode()}" in tcp_daemon.log.read_text()


def test_a_key_added_to_the_directory_is_admitted(tcp_daemon: Daemon, keys: Keys) -> None:
    public, secret = _keygen(keys.dir / "late", "latecomer")
    late = keys.client(secret)
    with pytest.raises(AuthenticationError):
        nbsclient.connect(tcp_daemon.store_path("curve-late"), tcp_daemon.endpoint, curve_keys=late)
    shutil.copy(public, keys.clients)
    try:
        for _ in range(120):  # the daemon reads the directory again at its next maintenance pass
            try:
                nbsclient.connect(tcp_daemon.store_path("curve-late"), tcp_daemon.endpoint, curve_keys=late).close()
                break
            except AuthenticationError:
                time.sleep(0.25)
        else:
            pytest.fail("the added key was never admitted")
    finally:
        os.unlink(os.path.join(keys.clients, os.path.basename(public)))


def test_a_taken_port_stops_a_curve_daemon_with_one_line(tcp_daemon: Daemon, keys: Keys, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "nbsd", "serve", "--endpoint", tcp_daemon.endpoint,
                           "--cache-dir", str(tmp_path / "cache"), "--curve-secret-key", keys.server_secret,
                           "--curve-client-keys", keys.clients], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"nbsd: cannot start: cannot listen on {tcp_daemon.endpoint}")


def test_tcp_without_keys_does_not_start(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "nbsd", "serve", "--endpoint", f"tcp://127.0.0.1:{_free_port()}",
                           "--cache-dir", str(tmp_path / "cache")], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "needs curve_secret_key and curve_client_keys" in proc.stderr
    assert not (tmp_path / "cache").exists()

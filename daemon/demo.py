"""``nbsd demo``: start a daemon on a local store and run a few client processes against it.

Phase one: every client process writes chunks and commits them, retrying when
another client moved the root first.  Phase two: every client reads back what
all of them wrote; the first reads fill the daemon's cache, later ones are
served from it.  The demo prints what each client did and the daemon's status,
then stops the daemon.  No AWS account is involved: the store is a local
directory, the embedded default.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import time

from nbsd.runner import DaemonProcess

CHUNKS_PER_CLIENT = 256
CHUNK_SIZE = 4096


def _write(args: tuple[int, str, str]) -> tuple[int, int, list[bytes]]:
    """Write chunks, commit them; returns (client, commit attempts, addresses)."""
    import nbsclient

    index, spec, endpoint = args
    with nbsclient.connect(spec, endpoint) as store:
        written = [bytes(store.put(os.urandom(CHUNK_SIZE - 16) + b"client %08d" % index))
                   for _ in range(CHUNKS_PER_CLIENT)]
        attempts = 0
        while True:
            attempts += 1
            last = store.root()
            root = store.put(b"commit by client %d on top of %s" % (index, str(last).encode()))
            if store.commit(root, last):
                return index, attempts, written


def _read(args: tuple[int, str, str, list[bytes]]) -> tuple[int, int, float]:
    """Read every address; returns (client, chunks found, milliseconds)."""
    import nbsclient

    index, spec, endpoint, addrs = args
    with nbsclient.connect(spec, endpoint) as store:
        started = time.perf_counter()
        found = store.get_many(addrs)
        return index, len(found), (time.perf_counter() - started) * 1000


def main(directory: str | None, clients: int, keep: bool) -> int:
    workdir = directory or tempfile.mkdtemp(prefix="nbsd-demo-")
    daemon = DaemonProcess(workdir, cache_size="256MiB")
    print(f"starting nbsd: socket {daemon.socket}, cache {daemon.cache_dir}, log {daemon.log_path}")
    try:
        with daemon:
            code = _run(os.path.join(daemon.stores, "demo"), daemon.endpoint, clients)
        print(f"nbsd stopped (exit status {daemon.proc.returncode if daemon.proc else None})")
        return code
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(spec: str, endpoint: str, clients: int) -> int:
    from nbs.factory import new_local_store
    from nbsd.cli import main as nbsd_main

    pool = multiprocessing.get_context("spawn").Pool(clients)
    with pool:
        print(f"\n{clients} client processes write {CHUNKS_PER_CLIENT} chunks of {CHUNK_SIZE} bytes each "
              f"to {spec} and commit:")
        everything: list[bytes] = []
        for index, attempts, written in pool.map(_write, [(i, spec, endpoint) for i in range(clients)]):
            print(f"  client {index}: wrote {len(written)} chunks, committed after {attempts} attempt(s)")
            everything += written
        print(f"\nevery client reads all {len(everything)} chunks back through the daemon:")
        for round_ in (1, 2):
            for index, found, ms in pool.map(_read, [(i, spec, endpoint, everything) for i in range(clients)]):
                print(f"  round {round_}, client {index}: {found}/{len(everything)} chunks in {ms:.1f} ms")
    direct = new_local_store(spec)
    ok = direct.has_many(everything) == set()
    print(f"\nchecked directly on disk: every chunk is in the store: {ok}; root {direct.root()}\n")
    nbsd_main(["status", "--endpoint", endpoint])
    return 0 if ok else 1

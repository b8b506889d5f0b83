"""An application run by worker pools: its stores are opened, and used, when the module is imported.

A pool's parent (gunicorn's ``--preload`` master, a celery worker, a
``multiprocessing`` parent) imports it before it forks its workers, which then
use the inherited objects: the way applications use libraries in production.
Under ``spawn`` and ``forkserver`` each worker imports it again and opens its own.

Environment: ``POOL_APP_DIR`` a local store, opened directly and through nbsd
(``NBSD_ENDPOINT``); ``POOL_APP_SEED`` a file of hex addresses every task reads
back; ``POOL_APP_LOG`` a file the importing process appends its own landed
commits to.  Run as ``python -m tests.pool_app METHOD TASKS`` it maps ``task``
over a ``multiprocessing`` pool of that start method and prints the results.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

import nbs
import nbsclient
from nbs.chunk_store import ChunkStore
from tests.linked import commit_one

SEED = [bytes.fromhex(line) for line in open(os.environ["POOL_APP_SEED"]).read().split()]
STORES: dict[str, ChunkStore] = {
    "direct": nbs.open_store(os.environ["POOL_APP_DIR"]),
    "daemon": nbsclient.connect(os.environ["POOL_APP_DIR"]),
}


def _log(landed: dict[str, Any]) -> None:
    with open(os.environ["POOL_APP_LOG"], "a") as log:
        log.write(json.dumps(landed) + "\n")


def task(which: str, n: int) -> dict[str, Any]:
    """Read every seed chunk back (their digest) and land one linked commit through store ``which``."""
    store = STORES[which]
    found = store.get_many(SEED)
    digest = hashlib.sha256(b"".join(found[a] for a in SEED if a in found)).hexdigest()
    landed = commit_one(store, n, n)
    return {"pid": os.getpid(), "which": which, "digest": digest, **landed}


for _which, _store in STORES.items():  # use everything before any fork: threads, sessions, sockets, caches
    _store.get_many(SEED)
    _log(commit_one(_store, os.getpid(), -1))


def application(environ: dict[str, Any], start_response: Callable[[str, list[tuple[str, str]]], object]
                ) -> Iterable[bytes]:
    """WSGI: ``GET /<which>/<n>`` runs ``task(which, n)`` and answers its result as JSON."""
    which, n = environ["PATH_INFO"].strip("/").split("/")
    body = json.dumps(task(which, int(n))).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _star_task(args: tuple[str, int]) -> dict[str, Any]:
    return task(*args)


def main(method: str, tasks: int) -> None:
    work = [("direct" if n % 2 else "daemon", n) for n in range(tasks)]
    with multiprocessing.get_context(method).Pool(4) as pool:
        for result in pool.imap_unordered(_star_task, work):
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

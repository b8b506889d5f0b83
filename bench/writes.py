"""Write throughput: put + commit, direct and through nbsd, against plain file writes."""

from __future__ import annotations

import os
import tempfile
import time

from bench.common import Figure, Report, chunk_payloads, progress
from nbs.chunk_store import ChunkStore
from nbs.factory import new_local_store
from nbsd.runner import DaemonProcess

CHUNK = 4096


def commit_batches(store: ChunkStore, batches: list[list[bytes]]) -> float:
    """Seconds to put each batch (``put_many``) and commit it."""
    t = time.perf_counter()
    for batch in batches:
        last = store.put_many(batch)[-1]
        assert store.commit(last, store.root())
    return time.perf_counter() - t


def write_batches(commits: int, per_commit: int, seed: int) -> list[list[bytes]]:
    """``commits`` batches of distinct 4 KiB chunks, ``per_commit`` bytes each."""
    per = per_commit // CHUNK
    chunks = list(chunk_payloads(commits * per, CHUNK, seed=seed))
    return [chunks[i:i + per] for i in range(0, len(chunks), per)]


def run(report: Report, quick: bool) -> None:
    commits, per_commit = (4, 5 << 20) if quick else (10, 10 << 20)
    total = commits * per_commit
    section = f"writes {commits} commits x {per_commit >> 20} MiB"
    progress(f"[{section}]")
    batches = write_batches(commits, per_commit, seed=11)
    workdir = tempfile.mkdtemp(prefix="nbs-bench-")

    t = time.perf_counter()
    for i, batch in enumerate(batches):
        path = os.path.join(workdir, f"plain-{i}")
        with open(path + ".tmp", "wb") as out:
            out.write(b"".join(batch))
        os.rename(path + ".tmp", path)
    plain = total / (time.perf_counter() - t) / 1e6

    local_dir = os.path.join(workdir, "local")
    os.makedirs(local_dir)
    direct = total / commit_batches(new_local_store(local_dir), batches) / 1e6
    report.add(Figure(section, "put+commit, local direct", direct, "MB/s", "plain file writes", plain))

    with DaemonProcess(os.path.join(workdir, "nbsd")) as daemon:
        import nbsclient

        with nbsclient.connect(os.path.join(daemon.stores, "w"), daemon.endpoint) as store:
            via = total / commit_batches(store, batches) / 1e6
    report.add(Figure(section, "put+commit, local via nbsd", via, "MB/s", "local direct", direct))

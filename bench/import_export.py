"""Local store import and export of a 100 MiB payload of 4 KiB chunks, against plain file I/O.

Go Noms's README reports 72 MB/s import and 300 MB/s export on a laptop; those are the targets.
"""

from __future__ import annotations

import os
import tempfile
import time

from bench.common import Figure, Report, chunk_payloads, progress
from nbs.factory import new_local_store

CHUNK = 4096


def run(report: Report, quick: bool) -> None:
    total = (20 if quick else 100) << 20
    count = total // CHUNK
    section = f"local import/export {total >> 20} MiB"
    progress(f"[{section}] {count} chunks of {CHUNK} bytes")
    chunks = list(chunk_payloads(count, CHUNK, seed=7))
    workdir = tempfile.mkdtemp(prefix="nbs-bench-")

    plain = os.path.join(workdir, "plain")
    t = time.perf_counter()
    with open(plain, "wb") as out:
        for c in chunks:
            out.write(c)
    plain_write = total / (time.perf_counter() - t) / 1e6

    store_dir = os.path.join(workdir, "store")
    os.makedirs(store_dir)
    t = time.perf_counter()
    store = new_local_store(store_dir)
    addrs = [store.put(c) for c in chunks]
    assert store.commit(addrs[-1], store.root())
    imported = total / (time.perf_counter() - t) / 1e6
    report.add(Figure(section, "import (put + commit)", imported, "MB/s", "plain file writes", plain_write,
                      ">= 72 MB/s", imported >= 72))

    t = time.perf_counter()
    with open(plain, "rb") as f:
        while f.read(CHUNK):
            pass
    plain_read = total / (time.perf_counter() - t) / 1e6
    t = time.perf_counter()
    reader = new_local_store(store_dir)
    got = 0
    for i in range(0, count, 1000):
        got += sum(map(len, reader.get_many(addrs[i:i + 1000]).values()))
    exported = total / (time.perf_counter() - t) / 1e6
    assert got == total
    report.add(Figure(section, "export (get_many)", exported, "MB/s", "plain file reads", plain_read,
                      ">= 300 MB/s", exported >= 300))

"""The per-process pool of threads that decode the records a ``get_many`` read.

Decoding a batch of records is checking CRCs and decompressing into fresh
chunks; measured on 4 KiB chunks, two threads decode a reopened table's
chunks about 1.2x faster than one (a worker process would have to copy every
chunk back).  Hashing, encoding and verifying go to the chunk worker
processes instead (``nbs/chunk_workers.py``), where threads gain nothing.
Work submitted from a pool thread runs inline, and a forked child starts
threads of its own (``IOPool`` does both).
"""

from __future__ import annotations

import os

from nbs.io_pool import IOPool

CPU_THREADS = os.cpu_count() or 1
BATCH_CHUNKS = 256  # records per decode task: big enough that a task's overhead is noise

CPU_POOL = IOPool(CPU_THREADS, "nbs-cpu")

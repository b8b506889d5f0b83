"""A bounded wait for the ``flock`` that guards a local store's manifest.

Go Noms waits for ``LOCK`` without limit.  A process stopped while it holds the
lock (SIGSTOP, a debugger, a hung network file system) would then freeze every
reader and writer of the store, nbsd's worker threads included, with nothing
saying why.  Here the wait polls with a growing pause and gives up after a
timeout with ``StoreLockedError``, which names the file and, when the kernel's
lock table shows it, the process holding it.  A lock is normally held for the
few milliseconds of a manifest read or rename, so polling costs nothing when
there is no contention and a few milliseconds at most when there is.
"""

from __future__ import annotations

import fcntl
import os
import time

from nbs.errors import StoreLockedError

LOCK_WAIT_SECONDS = 20.0  # below a client's default 30 s request timeout, so the error reaches it
FIRST_PAUSE = 0.0005
LONGEST_PAUSE = 0.02
PROC_LOCKS = "/proc/locks"


def lock_exclusive(fd: int, path: str, timeout: float = LOCK_WAIT_SECONDS) -> None:
    """Take ``flock(LOCK_EX)`` on ``fd`` (open on ``path``) within ``timeout`` seconds or raise ``StoreLockedError``."""
    started = time.monotonic()
    pause = FIRST_PAUSE
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            waited = time.monotonic() - started
            if waited >= timeout:
                raise StoreLockedError(path, waited, lock_holder(fd)) from None
            time.sleep(min(pause, timeout - waited))
            pause = min(pause * 2, LONGEST_PAUSE)


def lock_holder(fd: int) -> str | None:
    """Who holds an ``flock`` on the file behind ``fd``, as ``pid N (name)``, from ``/proc/locks``; None if unknown.

    Lines there read ``1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF`` (major and minor in
    hex); lines of waiters carry a ``->`` and are skipped.
    """
    try:
        st = os.fstat(fd)
        with open(PROC_LOCKS, encoding="ascii", errors="replace") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted and fields[4].isdigit():
            return _describe(int(fields[4]))
    return None


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as comm:
            return f"pid {pid} ({comm.read().strip()})"
    except OSError:
        return f"pid {pid}"

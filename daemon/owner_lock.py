"""Lock files that make one nbsd the owner of a socket or a cache directory.

An exclusive ``flock(2)`` ends with the process that took it, so a daemon that
crashed never leaves a stale lock behind.  The owner writes its pid into the
file, so a daemon refused the lock can say which process holds it.
"""

from __future__ import annotations

import fcntl
import os


class LockHeldError(Exception):
    """Another process holds the lock."""

    def __init__(self, path: str, holder: str) -> None:
        super().__init__(f"{path} is locked by {holder}")
        self.path = path
        self.holder = holder


def take_owner_lock(path: str) -> int:
    """The descriptor of ``path`` (created if missing) locked by this process; keep it open while owning.

    Raises ``LockHeldError`` when another process owns it, ``OSError`` when the file cannot be opened.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        raise LockHeldError(path, f"pid {pid}" if pid.isdigit() else "another process") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd

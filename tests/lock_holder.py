"""A separate process holding a store's LOCK, for tests of what waits for it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOLDER = ("import fcntl,os,sys,time;fd=os.open(sys.argv[1],os.O_RDWR);fcntl.flock(fd,fcntl.LOCK_EX);"
          "print('held',flush=True);time.sleep(float(sys.argv[2]))")


@contextmanager
def held_by_another_process(lock: Path, seconds: float = 60.0) -> Iterator[subprocess.Popen[str]]:
    """A separate process holding ``flock(LOCK_EX)`` on ``lock`` for ``seconds`` (killed on exit)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()

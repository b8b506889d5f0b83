"""Running a function in a forked child of the test process, with a bounded wait.

The child inherits everything the test built before the fork (stores, pools,
sockets, threads' held locks), which is the point: it is how worker pools
use objects.  A child that hangs is killed and fails the test.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import traceback
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ChildFailed(AssertionError):
    pass


def in_child(fn: Callable[[], T], timeout: float = 60.0) -> T:
    """``fn()`` run in a forked child; its exception becomes ``ChildFailed`` here."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the test runner
        os.close(read_end)
        try:
            outcome: tuple[bool, object] = (True, fn())
        except BaseException:  # noqa: BLE001 - reported to the parent whatever it is
            outcome = (False, traceback.format_exc())
        try:
            payload = pickle.dumps(outcome)
        except Exception:  # noqa: BLE001
            payload = pickle.dumps((False, traceback.format_exc()))
        with os.fdopen(write_end, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_end)
    try:
        chunks = []
        with os.fdopen(read_end, "rb") as src:
            while True:
                ready, _, _ = select.select([src], [], [], timeout)
                if not ready:
                    os.kill(pid, signal.SIGKILL)
                    raise ChildFailed(f"the forked child hung for {timeout}s")
                chunk = src.read1(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.waitpid(pid, 0)
    if not chunks:
        raise ChildFailed("the forked child died without a result")
    ok, value = pickle.loads(b"".join(chunks))
    if not ok:
        raise ChildFailed(f"in the forked child:\n{value}")
    return value  # type: ignore[no-any-return]

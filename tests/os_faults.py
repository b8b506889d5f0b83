"""Real OS conditions for fault tests: a process that file permissions apply to, and a small tmpfs.

Root bypasses file permissions, so where a test needs "permission denied" and
the suite runs as root, the process under test runs without the capabilities
that grant the bypass (``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``): it stays
root, owner of the test's files, but their mode bits now apply.  A tmpfs of a
few MiB is a real file system that fills up; mounting one needs root.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2


def _drop_permission_bypass() -> None:
    """In the child before exec: take the bypass capabilities out of the bounding set, so exec drops them."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def unprivileged() -> dict[str, Any]:
    """``subprocess`` arguments for a child that file permissions apply to, even when we are root."""
    return {"preexec_fn": _drop_permission_bypass} if os.geteuid() == 0 else {}


@contextmanager
def small_tmpfs(size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted for the test and unmounted after; skips the test where that is impossible."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path = tempfile.mkdtemp(prefix="nbs-tmpfs-", dir="/tmp")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", path],
                             capture_output=True, text=True, timeout=30)
    if mounted.returncode != 0:
        os.rmdir(path)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield Path(path)
    finally:
        subprocess.run(["umount", "--lazy", path], capture_output=True, timeout=30, check=True)
        os.rmdir(path)

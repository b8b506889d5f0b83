"""Crash-safe file replacement: data reaches the disk before the name that points at it.

A rename makes a file visible, but after a power cut the new name can survive
while the file's bytes did not, unless the bytes were synced first; the rename
itself is durable only once its directory is synced.  So every durable write
here is: write a temp file, ``fsync`` it, rename it into place, ``fsync`` the
directory.  With ``sync=False`` the same steps run without the two syncs
(scratch stores: a crash may lose recent commits or leave a store that names
a table whose bytes never reached the disk).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

Writer = Callable[[bytes], object]


def sync_directory(directory: str) -> None:
    """Make the entries of ``directory`` (creations, renames) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(directory: str, prefix: str, emit: Callable[[Writer], object], sync: bool) -> tuple[str, int]:
    """A new temp file in ``directory`` holding what ``emit`` writes (synced if ``sync``): (path, size).

    A failed write leaves no temp file behind.
    """
    fd, temp = tempfile.mkstemp(prefix=prefix, dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            emit(out.write)
            size = out.tell()
            if sync:
                out.flush()
                os.fsync(out.fileno())
    except BaseException:
        remove_quietly(temp)
        raise
    return temp, size


def rename_into_place(temp: str, path: str, sync: bool) -> None:
    """Rename ``temp`` over ``path``; with ``sync`` the rename is durable when this returns."""
    os.rename(temp, path)
    if sync:
        sync_directory(os.path.dirname(path) or ".")


def make_directories(path: str, sync: bool) -> None:
    """``os.makedirs(path, exist_ok=True)``; with ``sync`` the new directories' entries are durable too."""
    created: list[str] = []
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        created.append(probe)
        probe = os.path.dirname(probe)
    os.makedirs(path, exist_ok=True)
    if sync:
        for directory in reversed(created):
            sync_directory(os.path.dirname(directory))


def remove_quietly(path: str) -> None:
    """Delete ``path`` if it is still there (cleanup must not hide the error being handled)."""
    try:
        os.unlink(path)
    except OSError:
        pass

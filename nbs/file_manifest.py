"""The manifest of a local store: one line of text in ``<dir>/manifest``, guarded by ``LOCK``.

Format (no trailing newline): ``4:<vers>:<lock>:<root>[:<table>:<count>]*``.
Readers and writers take ``flock(LOCK_EX)`` on ``<dir>/LOCK`` exactly as Go
does, so Go and Python processes can share a store; unlike Go, a wait for it
is bounded (``nbs.file_lock``: ``StoreLockedError`` after ``lock_timeout``
seconds, naming the holder).  Updates write a temp file first and rename it
over ``manifest`` while holding the lock; unless the store
was opened with ``sync=False``, the temp file is synced before the rename and
the directory after it, still under the lock, so no reader sees a manifest
that a power cut could take back.  OS failures raise ``StoreIOError``.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from nbs.addr import EMPTY_ADDR, Addr
from nbs.durable_files import remove_quietly, rename_into_place, write_temp
from nbs.errors import AddressError, ManifestError, StoreIOError, VersionMismatchError
from nbs.file_lock import LOCK_WAIT_SECONDS, lock_exclusive
from nbs.manifest import (NOMS_VERSION, STORAGE_VERSION, Hook, Manifest, ManifestContents,
                          format_specs, parse_specs)
from nbs.stats import Stats

MANIFEST_FILE = "manifest"
LOCK_FILE = "LOCK"
MANIFEST_TEMP_PREFIX = "nbs_manifest_"


def format_manifest(contents: ManifestContents) -> str:
    fields = [STORAGE_VERSION, contents.vers, str(contents.lock), str(contents.root)]
    if contents.specs:
        fields.append(format_specs(contents.specs))
    return ":".join(fields)


def parse_manifest(text: str, source: str) -> ManifestContents:
    """Parse manifest text; anything malformed raises ``ManifestError``."""
    fields = text.split(":")
    if len(fields) < 4 or len(fields) % 2:
        raise ManifestError(source, f"malformed manifest ({len(fields)} fields)")
    if fields[0] != STORAGE_VERSION:
        raise VersionMismatchError(source, f"storage version {fields[0]!r}, this code reads {STORAGE_VERSION!r}")
    try:
        lock = Addr.parse(fields[2])
        root = Addr.parse(fields[3])
    except AddressError as err:
        raise ManifestError(source, f"malformed manifest: {err}") from err
    return ManifestContents(fields[1], lock, root, parse_specs(fields[4:], source))


class FileManifest(Manifest):
    def __init__(self, directory: str, sync: bool = True, lock_timeout: float = LOCK_WAIT_SECONDS) -> None:
        self.directory = directory
        self.sync = sync
        self.lock_timeout = lock_timeout
        self._path = os.path.join(directory, MANIFEST_FILE)
        self._lock_path = os.path.join(directory, LOCK_FILE)

    def name(self) -> str:
        return self.directory

    def parse_if_exists(self, stats: Stats, read_hook: Hook | None = None) -> ManifestContents | None:
        started = time.perf_counter_ns()
        try:
            try:
                lock_fd = os.open(self._lock_path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
            try:
                lock_exclusive(lock_fd, self._lock_path, self.lock_timeout)
                if read_hook is not None:
                    read_hook()
                try:
                    manifest = open(self._path, "rb")
                except FileNotFoundError:
                    return None
            finally:
                _unlock_and_close(lock_fd)
            with manifest:
                raw = manifest.read()
            return parse_manifest(self._decode(raw), self._path)
        except OSError as err:
            raise self._io_error("read", err) from err
        finally:
            stats.read_manifest_latency.sample_time(started)

    def update(self, last_lock: Addr, new: ManifestContents, stats: Stats,
               write_hook: Hook | None = None) -> ManifestContents:
        started = time.perf_counter_ns()
        text = format_manifest(new).encode("utf-8")
        try:
            temp, _ = write_temp(self.directory, MANIFEST_TEMP_PREFIX, lambda write: write(text), self.sync)
            try:
                lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
                try:
                    lock_exclusive(lock_fd, self._lock_path, self.lock_timeout)
                    if write_hook is not None:
                        write_hook()
                    current = self._read_locked()
                    if current is None:
                        if last_lock != EMPTY_ADDR:
                            raise ManifestError(self._path, "manifest vanished while a lock was expected")
                        current = ManifestContents(lock=EMPTY_ADDR)
                    elif current.vers != NOMS_VERSION:
                        raise VersionMismatchError(
                            self._path, f"won't clobber a store of Noms version {current.vers!r}")
                    if current.lock != last_lock:
                        return current
                    rename_into_place(temp, self._path, self.sync)
                    return new
                finally:
                    _unlock_and_close(lock_fd)
            finally:
                remove_quietly(temp)
        except OSError as err:
            raise self._io_error("update", err) from err
        finally:
            stats.write_manifest_latency.sample_time(started)

    @contextmanager
    def locked(self) -> Iterator[ManifestContents | None]:
        """The manifest while this block holds the ``LOCK``: no update lands before it exits.

        A collector checks here that a table is still unreferenced and deletes it
        before any commit can name it.  None when the store has no manifest.
        """
        try:
            lock_fd = os.open(self._lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            yield None
            return
        except OSError as err:
            raise self._io_error("lock", err) from err
        try:
            lock_exclusive(lock_fd, self._lock_path, self.lock_timeout)
            try:
                contents = self._read_locked()
            except OSError as err:
                raise self._io_error("read", err) from err
            yield contents
        finally:
            _unlock_and_close(lock_fd)

    def _io_error(self, action: str, err: OSError) -> StoreIOError:
        """The typed error for a failed file operation, naming the file it concerned."""
        path = err.filename if isinstance(err.filename, str) else self._path
        return StoreIOError(f"{action} manifest", path, err)

    def _read_locked(self) -> ManifestContents | None:
        try:
            with open(self._path, "rb") as manifest:
                raw = manifest.read()
        except FileNotFoundError:
            return None
        return parse_manifest(self._decode(raw), self._path)

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ManifestError(self._path, "manifest is not text") from err


def _unlock_and_close(lock_fd: int) -> None:
    """Release the lock explicitly: a child forked meanwhile holds a copy of the
    descriptor, and closing ours alone would leave the lock held until the child exits."""
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
    finally:
        os.close(lock_fd)

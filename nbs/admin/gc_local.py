"""``nbs gc`` of a local store directory.

Candidates are regular files whose names are table names (32 characters of
Noms base32) that the manifest does not name, and leftover temp files of the
store's own patterns (``nbs_table_*``, ``nbs_manifest_*``, and ``nbs_gc_*`` of
this collector's state file).  Nothing else in the directory is looked at:
not the manifest, ``LOCK``, the state file, other files, directories or
symlinks.  The time a file was written is its mtime.

Each table is deleted under the store's ``LOCK``, after reading the manifest
again and checking that the file was not re-written since the scan: a commit
(which swaps the manifest under that lock) cannot name it meanwhile.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

from nbs.addr import Addr
from nbs.admin.gc import CollectionRefusedError, GCReport, Garbage, age
from nbs.admin.gc_state import LOCAL_STATE_TEMP_PREFIX, LocalState
from nbs.admin.location import LocalLocation
from nbs.admin.progress import ProgressFactory
from nbs.errors import StoreIOError
from nbs.file_manifest import MANIFEST_TEMP_PREFIX, FileManifest
from nbs.file_table_persister import TABLE_TEMP_PREFIX

TEMP_PREFIXES = (TABLE_TEMP_PREFIX, MANIFEST_TEMP_PREFIX, LOCAL_STATE_TEMP_PREFIX)
TABLE, TEMP = "table", "temp file"


@dataclass(frozen=True)
class _Found:
    garbage: Garbage
    mtime_ns: int


def collect_local(location: LocalLocation, min_age: float, dry_run: bool, progress: ProgressFactory,
                  clock: Callable[[], float] = time.time) -> GCReport:
    """Collect the store directory at ``location`` (see the module docstring)."""
    contents = location.manifest()
    directory = location.directory
    report = GCReport(str(location), dry_run, min_age, live_tables=len({s.name for s in contents.specs}))
    live = {str(s.name) for s in contents.specs}
    state = LocalState(directory)
    first_seen = state.load(report.warnings)
    now = clock()
    found = _scan(directory, live)
    seen, ripe = age(((f.garbage.name, f.mtime_ns / 1e9) for f in found), first_seen, now, min_age)
    doomed = [f for f in found if f.garbage.name in ripe]
    report.waiting = [f.garbage for f in found if f.garbage.name not in ripe]
    if dry_run:
        report.deleted = [f.garbage for f in doomed]
        return report
    state.save(seen)
    manifest = FileManifest(directory)
    bar = progress("delete", len(doomed), "file")
    try:
        for f in doomed:
            _delete(directory, manifest, f, report, seen)
            bar.update(1)
    finally:
        bar.close()
    state.save(seen)
    return report


def _scan(directory: str, live: set[str]) -> list[_Found]:
    found = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                name = entry.name
                is_table = Addr.maybe_parse(name) is not None and name not in live
                if not (is_table or name.startswith(TEMP_PREFIXES)):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # a temp file renamed into place meanwhile
                    continue
                if stat.S_ISREG(st.st_mode):
                    found.append(_Found(Garbage(TABLE if is_table else TEMP, name, st.st_size), st.st_mtime_ns))
    except OSError as err:
        raise StoreIOError("list store directory", directory, err) from err
    return found


def _delete(directory: str, manifest: FileManifest, found: _Found, report: GCReport, seen: dict[str, float]) -> None:
    """Delete one file unless it is named again or was re-written; tables under the store's LOCK."""
    garbage = found.garbage
    path = os.path.join(directory, garbage.name)
    try:
        with manifest.locked() as contents:
            if contents is None:
                raise CollectionRefusedError(f"the manifest of {directory} vanished during collection")
            if any(str(s.name) == garbage.name for s in contents.specs):
                seen.pop(garbage.name, None)  # a commit named it after the scan: live again
                return
            if os.lstat(path).st_mtime_ns != found.mtime_ns:
                report.waiting.append(garbage)  # re-written since the scan: young again
                return
            os.unlink(path)
    except FileNotFoundError:  # someone else removed it
        seen.pop(garbage.name, None)
        return
    except OSError as err:
        report.failed.append((garbage, f"{err.strerror or err}"))
        return
    seen.pop(garbage.name, None)
    report.deleted.append(garbage)

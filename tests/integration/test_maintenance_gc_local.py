"""``nbs gc`` of local stores: conjoin orphans go, nothing else does, and concurrent writers lose nothing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from nbs.addr import Addr
from nbs.admin.gc import DEFAULT_MIN_AGE
from nbs.admin.gc_local import collect_local
from nbs.admin.gc_state import LOCAL_STATE_FILE
from nbs.admin.location import LocalLocation
from nbs.factory import LocalStoreFactory, SharedCaches, local_store_with, new_local_store
from nbs.file_manifest import FileManifest
from nbs.manifest import ManifestContents, TableSpec
from nbs.noms.values import String
from nbs.stats import Stats
from tests.linked import check_history, commit_one, results, spawn
from tests.maintenance import (backdate, commit_blobs, conjoined_db, live_chunks, nbs, nbs_process,
                               read_in_fresh_process, silent_progress, table_files)

DAY = 24 * 3600


@pytest.fixture
def db_dir(tmp_path: Path) -> Path:
    return conjoined_db(tmp_path / "db")


def live_names(directory: Path) -> set[str]:
    return {str(s.name) for s in new_local_store(str(directory)).upstream.specs}


def add_bystanders(directory: Path) -> dict[str, bytes]:
    """Files gc must never touch, by name and content; and a directory and a symlink named like tables."""
    files = {"notes.txt": b"mine", "nbs_tablespoon": b"not a temp file", "LOCK.bak": b"x",
             "0123456789abcdefghijklmnopqrstuvwxyz"[:31]: b"31 characters, not a table name"}
    for name, data in files.items():
        (directory / name).write_bytes(data)
        backdate(directory / name, 30 * DAY)
    (directory / ("0" * 32)).mkdir()
    (directory / ("1" * 32)).symlink_to(directory / "notes.txt")
    return files


def add_leftovers(directory: Path, age: float) -> list[str]:
    """Temp files of the store's own patterns, ``age`` seconds old."""
    names = ["nbs_table_k2l1x9", "nbs_manifest_q8w7e6", "nbs_gc_a1b2c3"]
    for name in names:
        (directory / name).write_bytes(b"half-written " + name.encode())
        backdate(directory / name, age)
    return names


def test_gc_deletes_conjoin_orphans_and_leftovers_only(db_dir: Path) -> None:
    store = new_local_store(str(db_dir))
    root, live, chunks = store.root(), live_names(db_dir), live_chunks(store)
    orphans = table_files(db_dir) - live
    assert orphans and live
    bystanders = add_bystanders(db_dir)
    leftovers = add_leftovers(db_dir, 2 * DAY)
    result = nbs("gc", str(db_dir), "--min-age", "0s")
    assert result.code == 0
    assert "warning: --min-age 0" in result.err
    deleted = {line.split(" (")[0].split()[-1] for line in result.lines[:-1]}
    assert deleted == orphans | set(leftovers)
    assert table_files(db_dir) - {"0" * 32, "1" * 32} == live
    assert not any((db_dir / name).exists() for name in leftovers)
    assert {name: (db_dir / name).read_bytes() for name in bystanders} == bystanders
    assert (db_dir / ("0" * 32)).is_dir() and (db_dir / ("1" * 32)).is_symlink()
    assert new_local_store(str(db_dir)).root() == root
    verified = nbs_process("verify", str(db_dir), "--reachable")
    assert verified.code == 0 and verified.lines[-1].endswith(": OK"), verified.out
    read_in_fresh_process(str(db_dir), chunks, db_dir.parent / "addrs", store)
    again = nbs("gc", str(db_dir), "--min-age", "0s")
    assert again.lines == [f"{db_dir}: deleted 0, freeing 0 B; {len(live)} live tables"]


def test_dry_run_prints_exactly_what_a_run_deletes_and_changes_nothing(db_dir: Path) -> None:
    add_leftovers(db_dir, 2 * DAY)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in db_dir.iterdir()}
    dry = nbs("gc", str(db_dir), "--min-age", "0s", "--dry-run", "--json")
    assert dry.code == 0 and dry.err == ""  # no warning: a dry run deletes nothing
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in db_dir.iterdir()} == before
    planned = json.loads(dry.out)
    assert planned["dry_run"] is True and planned["deleted"]
    assert planned["freed_bytes"] == sum(before[g["name"]][1].__len__() for g in planned["deleted"])
    text = nbs("gc", str(db_dir), "--min-age", "0s", "--dry-run")
    assert all(line.startswith("would delete ") for line in text.lines[:-1])
    assert text.lines[-1].startswith(f"{db_dir}: would delete {len(planned['deleted'])}, freeing ")
    done = json.loads(nbs("gc", str(db_dir), "--min-age", "0s", "--json").out)
    assert sorted(done["deleted"], key=str) == sorted(planned["deleted"], key=str)
    assert done["freed_bytes"] == planned["freed_bytes"]


def test_default_min_age_spares_fresh_orphans_and_leftovers(db_dir: Path) -> None:
    fresh = add_leftovers(db_dir, 60)
    before = set(os.listdir(db_dir))
    orphans = table_files(db_dir) - live_names(db_dir)
    result = nbs("gc", str(db_dir))
    assert result.code == 0 and result.err == ""
    assert result.lines == [f"{db_dir}: deleted 0, freeing 0 B; {len(orphans) + len(fresh)} unreferenced, "
                            f"not yet old enough for --min-age 24h; {len(live_names(db_dir))} live tables"]
    assert set(os.listdir(db_dir)) == before | {LOCAL_STATE_FILE}


def gc_at(directory: Path, at: float) -> set[str]:
    """Collect with the default minimum age and the collector's clock at ``at``; the names deleted."""
    report = collect_local(LocalLocation(str(directory)), DEFAULT_MIN_AGE, False, silent_progress, clock=lambda: at)
    return {g.name for g in report.deleted}


def test_orphans_go_a_min_age_after_first_seen_while_a_min_age_old(db_dir: Path) -> None:
    """The rule, with the collector's clock moved instead of waiting days."""
    now = time.time()
    orphans = table_files(db_dir) - live_names(db_dir)
    old = sorted(orphans)[0]
    backdate(db_dir / old, 30 * DAY)
    assert gc_at(db_dir, now) == set()  # written long ago, but first seen unreferenced only now
    assert gc_at(db_dir, now + DAY - 60) == set()
    assert gc_at(db_dir, now + DAY + 60) == {old}  # the others were young until now: first seen now
    assert gc_at(db_dir, now + 2 * DAY) == set()
    assert gc_at(db_dir, now + 2 * DAY + 120) == orphans - {old}
    assert json.loads((db_dir / LOCAL_STATE_FILE).read_text())["first_seen"] == {}


def test_a_table_named_again_or_rewritten_starts_waiting_anew(db_dir: Path) -> None:
    now = time.time()
    named, rewritten = sorted(table_files(db_dir) - live_names(db_dir))[:2]
    for name in (named, rewritten):
        backdate(db_dir / name, 30 * DAY)
    assert gc_at(db_dir, now - 2 * DAY) == set()  # both first seen
    manifest = FileManifest(str(db_dir))
    current = manifest.parse_if_exists(Stats())
    assert current is not None
    with_named = ManifestContents.for_commit(current.root, [*current.specs, TableSpec(Addr.parse(named), 1)])
    manifest.update(current.lock, with_named, Stats())  # a manifest names it for a while
    (db_dir / rewritten).write_bytes((db_dir / rewritten).read_bytes())  # a writer stores it again
    assert gc_at(db_dir, now - DAY + 60) == set()
    manifest.update(with_named.lock, ManifestContents.for_commit(current.root, current.specs), Stats())
    assert gc_at(db_dir, now + 60) == set()  # both would be due if their first sightings had survived
    assert gc_at(db_dir, now + DAY + 120) == {named}  # first seen again at now + 60
    assert rewritten in gc_at(db_dir, now + 2 * DAY + 240)  # young until now + DAY, first seen again then


def test_reader_with_a_stale_view_rebases_after_gc(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    writer = new_local_store(str(tmp_path / "db"))
    roots = commit_blobs(writer, 3)
    reader = LocalStoreFactory(str(tmp_path), max_open_files=1).create_store("db")  # keeps one file open
    wanted = live_chunks(reader)
    old_tables = table_files(tmp_path / "db")
    conjoiner = new_local_store(str(tmp_path / "db"), max_tables=1)
    roots += commit_blobs(conjoiner, 1)
    assert nbs("gc", str(tmp_path / "db"), "--min-age", "0s").code == 0
    assert not old_tables & table_files(tmp_path / "db")
    found = reader.get_many(wanted)
    assert len(found) == len(wanted) and all(Addr.of(data) == a for a, data in found.items())
    assert reader.root() == roots[-1]  # it rebased onto the conjoined manifest


def test_writer_with_a_stale_view_commits_after_gc(tmp_path: Path) -> None:
    """Its commit conjoins from a view whose tables gc removed: it catches up, learns the root moved, and
    lands on the next try."""
    directory = tmp_path / "db"
    directory.mkdir()
    commit_blobs(new_local_store(str(directory)), 3)
    stale = local_store_with(str(directory), SharedCaches.create(max_open_files=1), max_tables=2)
    commit_blobs(new_local_store(str(directory), max_tables=1), 1)  # conjoins the first three tables
    assert nbs("gc", str(directory), "--min-age", "0s").code == 0
    value = stale.put(String("written from a stale view").encoding())
    assert not stale.commit(value, stale.root())
    assert stale.commit(value, stale.root())
    fresh = new_local_store(str(directory))
    assert fresh.root() == value
    assert len(fresh.get_many(live_chunks(fresh))) == len(live_chunks(fresh))


def test_refuses_a_directory_that_is_no_store(tmp_path: Path) -> None:
    (tmp_path / ("a" * 32)).write_bytes(b"looks like a table")
    backdate(tmp_path / ("a" * 32), 30 * DAY)
    LocalStoreFactory(str(tmp_path)).create_store("db")
    result = nbs("gc", str(tmp_path), "--min-age", "0s")
    assert result.code == 2 and result.out == ""
    assert f"{tmp_path} holds no manifest: not a store" in result.err
    assert (tmp_path / ("a" * 32)).exists()


def test_bad_min_age_is_a_usage_error(db_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        nbs("gc", str(db_dir), "--min-age", "tomorrow")
    assert exit_.value.code == 2 and "invalid duration 'tomorrow'" in capsys.readouterr().err


def test_concurrent_writers_and_repeated_gc_lose_nothing(tmp_path: Path) -> None:
    """Three writers conjoining every few commits while gc runs over and over with a 2 s minimum age
    (commits take milliseconds): every commit and every chunk survives.  Orphans of earlier commits,
    written an hour ago, fall due while the writers work."""
    directory = tmp_path / "db"
    directory.mkdir()
    earlier = [commit_one(new_local_store(str(directory), max_tables=3), 9, i) for i in range(10)]
    for path in directory.iterdir():
        backdate(path, 3600)
    workers, commits = 3, 30
    procs = [spawn("direct-commit", str(directory), str(w), str(commits), "3") for w in range(workers)]
    location = LocalLocation(str(directory))
    runs = collected = 0
    while any(p.poll() is None for p in procs):
        collected += len(collect_local(location, 2.0, False, silent_progress).deleted)
        runs += 1
        time.sleep(0.05)
    landed = earlier + [c for lines in results(procs) for c in lines]
    print(f"{runs} gc runs deleted {collected} files while the writers ran")
    assert runs >= 2
    check_history(str(directory), landed, len(landed))
    final = collect_local(location, 0.0, False, silent_progress)
    assert collected + len(final.deleted) > 0
    assert table_files(directory) == live_names(directory)
    check_history(str(directory), landed, len(landed))
    store = new_local_store(str(directory))
    read_in_fresh_process(str(directory), [Addr.parse(h) for c in landed for h in c["chunks"]],
                          tmp_path / "addrs", store)

"""``noms sync`` between backends: local -> AWS (moto), AWS -> local, and both through nbsd.

An incremental sync after one new commit must write exactly the chunks the
destination lacks (the new commit's new nodes) plus the destination's new
datasets map, counted in the destination store's tables.
"""

from __future__ import annotations

from pathlib import Path

import nbs.noms as noms
from nbs.addr import Addr
from nbs.chunk_store import ChunkStore
from nbs.noms.pull import chunk_refs
from tests.aws_server import unique_name
from tests.conftest import AWSLocation
from tests.daemon_harness import Daemon
from tests.integration.nomsfixtures import run


def reachable(cs: ChunkStore, root: bytes) -> set[bytes]:
    """Every chunk address reachable from ``root`` (the walk Go's pull does, without a sink)."""
    seen: set[bytes] = set()
    pending = [bytes(root)]
    while pending:
        addr = pending.pop()
        if addr in seen:
            continue
        seen.add(addr)
        data = cs.get(Addr(addr))
        assert data is not None
        pending.extend(chunk_refs(data))
    return seen


def make_source(path: Path) -> noms.Database:
    db = noms.open_database(str(path))
    value = noms.to_value(db.store, {"numbers": list(range(20_000)), "title": "v1"})
    db.commit("ds", value, noms.new_meta(date="2024-01-01T00:00:00Z", message="one"))
    return db


def new_commit(db: noms.Database) -> set[bytes]:
    """Change one number of the source and commit; returns the chunks the new head added."""
    before = db.head("ds")
    assert before is not None
    old = reachable(db.cs, bytes(before.hash()))
    value = db.head_value("ds")
    assert isinstance(value, noms.Map)
    numbers = value.get(noms.String("numbers"))
    assert isinstance(numbers, noms.List)
    numbers = noms.list_splice(db.store, numbers, 10_000, 1, [noms.Number(-1)])
    value = noms.map_edit(db.store, value, sets=[(noms.String("numbers"), numbers)])
    after = db.commit("ds", value, noms.new_meta(date="2024-01-02T00:00:00Z", message="two"))
    return reachable(db.cs, bytes(after.hash())) - old


def sync_twice(source: Path, dest_spec: str, open_dest: list[str], nbsd: list[str]) -> None:
    """Sync, commit one change at the source, sync again; check heads, logs and chunks written."""
    src = make_source(source)
    first = run([*nbsd, "sync", f"{source}::ds", f"{dest_spec}::ds"])
    assert first.exit_code == 0 and first.stderr == "" and b"Done - Synced" in first.stdout, first
    assert run([*nbsd, "sync", f"{source}::ds", f"{dest_spec}::ds"]).stdout == \
        f"Dataset {dest_spec}::ds is already up to date.\n".encode()
    added = new_commit(src)
    with noms.open_database(*open_dest) as dest:
        before = dest.cs.count()
    second = run([*nbsd, "sync", f"{source}::ds", f"{dest_spec}::ds"])
    assert second.exit_code == 0 and b"Done - Synced" in second.stdout, second
    with noms.open_database(*open_dest) as dest:
        assert dest.cs.count() - before == len(added) + 1  # the new chunks, then the new datasets map
        head = dest.head("ds")
        assert head is not None and head == src.head("ds")
    assert run([*nbsd, "log", f"{dest_spec}::ds"]).stdout == run(["log", f"{source}::ds"]).stdout
    assert 2 < len(added) < 10  # a changed leaf, the list's root path and the commit, not the whole list
    src.close()


def test_local_to_aws_and_back(tmp_path: Path, aws_location: AWSLocation) -> None:
    aws = aws_location.spec(unique_name("sync"))
    sync_twice(tmp_path / "src", aws, [aws], [])
    back = tmp_path / "back"
    result = run(["sync", f"{aws}::ds", f"{back}::copy"])
    assert result.exit_code == 0 and b"Done - Synced" in result.stdout
    assert run(["log", f"{back}::copy"]).stdout == run(["log", f"{tmp_path / 'src'}::ds"]).stdout


def test_local_to_local(tmp_path: Path) -> None:
    sync_twice(tmp_path / "src", str(tmp_path / "dest"), [str(tmp_path / "dest")], [])


def test_through_nbsd_local_to_aws(tmp_path: Path, nbsd_aws_daemon: Daemon, aws_location: AWSLocation) -> None:
    aws = f"aws://{aws_location.table}:{aws_location.bucket}/{unique_name('sync')}"
    source = Path(nbsd_aws_daemon.store_path(unique_name("src")))
    sync_twice(source, aws, [aws, nbsd_aws_daemon.endpoint], ["--nbsd", nbsd_aws_daemon.endpoint])


def test_a_source_that_is_not_a_commit_copies_nothing(tmp_path: Path) -> None:
    src = make_source(tmp_path / "src")
    src.close()
    result = run(["sync", f"{tmp_path / 'src'}::ds.value", f"{tmp_path / 'dest'}::ds"])
    assert (result.exit_code, result.stdout) == (1, b"")
    assert result.stderr == f"error: {tmp_path / 'src'}::ds.value is not a commit\n"
    assert not (tmp_path / "dest" / "manifest").exists()

"""The public ``nbs.noms`` API on every backend (local, mem, AWS on moto, through nbsd), and the README example."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbs.noms as noms
from tests.conftest import AWSLocation
from tests.daemon_harness import Daemon
from tests.aws_server import unique_name
from tests.integration.cliwrite import gen
from tests.integration.nomsfixtures import REPO, run

BACKENDS = ["local", "mem", "aws", "nbsd-local", "nbsd-aws"]


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[noms.Database]:
    kind = request.param
    if kind == "local":
        spec, nbsd = str(tmp_path / "db"), None
    elif kind == "mem":
        spec, nbsd = "mem", None
    elif kind == "aws":
        spec, nbsd = request.getfixturevalue("aws_location").spec(unique_name("lib")), None
    elif kind == "nbsd-local":
        daemon: Daemon = request.getfixturevalue("nbsd_daemon")
        spec, nbsd = daemon.store_path(unique_name("lib")), daemon.endpoint
    else:
        daemon = request.getfixturevalue("nbsd_aws_daemon")
        location: AWSLocation = request.getfixturevalue("aws_location")
        spec, nbsd = f"aws://{location.table}:{location.bucket}/{unique_name('lib')}", daemon.endpoint
    with noms.open_database(spec, nbsd) as db:
        yield db


def test_values_commits_history_and_diff(database: noms.Database) -> None:
    db = database
    data = gen(300_000)
    value = noms.to_value(db.store, {"numbers": list(range(5000)), "flags": {True, False}, "name": "x",
                                     "blob": noms.blob_from_stream(db.store, io.BytesIO(data))})
    first = db.commit("ds", value, noms.new_meta(date="2024-01-01T00:00:00Z", message="one",
                                                 fields={"author": "me", "n": noms.Number(1)}))
    assert isinstance(value, noms.Map) and value.get(noms.String("numbers")).length() == 5000  # type: ignore[union-attr]
    changed = noms.map_edit(db.store, value, sets=[(noms.String("name"), noms.String("y"))])
    second = db.commit("ds", changed, noms.new_meta(date="2024-01-02T00:00:00Z"))
    db.cs.rebase()
    assert db.head("ds") == second and db.head_value("ds") == changed
    assert [c.hash() for c in db.history("ds")] == [second.hash(), first.hash()]
    meta = first.get("meta")
    assert isinstance(meta, noms.Struct) and meta.get("author") == noms.String("me")
    assert noms.diff_text(value, changed) == '(root) {\n-   "name": "x"\n+   "name": "y"\n  }\n'
    blob = changed.get(noms.String("blob"))
    assert isinstance(blob, noms.Blob) and blob.read_all() == data
    with pytest.raises(noms.MergeNeededError):
        db.commit("ds", value, parents=[])


def test_merge_and_edits_in_memory() -> None:
    with noms.open_database("mem") as db:
        base = noms.to_value(db.store, {"a": 1, "b": 2})
        assert isinstance(base, noms.Map)
        left = noms.map_edit(db.store, base, sets=[(noms.String("a"), noms.Number(10))])
        right = noms.map_edit(db.store, base, removes=[noms.String("b")])
        merged = noms.three_way(left, right, base, db.store)
        assert merged == noms.to_value(db.store, {"a": 10})
        clash = noms.map_edit(db.store, base, sets=[(noms.String("a"), noms.Number(20))])
        with pytest.raises(noms.MergeConflict):
            noms.three_way(left, clash, base, db.store)
        assert noms.three_way(left, clash, base, db.store, noms.theirs) == clash


README_EXAMPLE = re.compile(r"## Noms data.*?```python\n(.*?)```.*?prints.*?:\n\n```\n(.*?)```", re.S)


def test_readme_example_runs_and_noms_log_prints_what_the_readme_says(tmp_path: Path) -> None:
    match = README_EXAMPLE.search((REPO / "README.md").read_text())
    assert match is not None
    code, log_output = match.groups()
    target = tmp_path / "noms-example"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.replace("/tmp/noms-example", str(target)), "README.md", "exec"), {})
    assert printed.getvalue() == ('(root) {\n+   "bob": struct Person {\n+     age: 37,\n+     city: "Porto",\n'
                                  "+   }\n  }\n[String(b'add bob'), String(b'first import')]\n")
    result = run(["log", f"{target}::people"])
    assert (result.stdout.decode(), result.stderr, result.exit_code) == (log_output, "", 0)
    assert run(["show", f"{target}::people.value[\"bob\"].city"]).stdout == b'"Porto"\n'

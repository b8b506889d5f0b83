"""CLI failures print ``error: <message>`` (Go Noms's text, NOMS-VALUES.md 9, 10), exit 1, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

import nbs
from nbs.noms.datas import Database
from nbs.noms.values import Map, Ref, String
from nbs.noms.types import VALUE_TYPE
from tests.integration.nomsfixtures import FIXTURES, run, run_process

SMALL = str(FIXTURES / "local-small" / "store")


@pytest.mark.parametrize("argv, stderr", [
    (["show", f"{SMALL}:people"], f"error: Missing :: after database in {SMALL}:people\n"),
    (["show", "ldb:/tmp/x::ds"], "error: Invalid database protocol  in ldb:/tmp/x\n"),  # sic: Go's text
    (["show", "mem:::ds"], 'error: In-memory database must be specified as "mem", not "mem:"\n'),
    (["show", f"{SMALL}::people.value[\"bob\""], "error: [ is missing closing ]\n"),
    (["show", f"{SMALL}::#abc"], "error: Invalid hash: abc\n"),
    (["ds", "-d", f"{SMALL}::people.value"],
     "error: path is not allowed for dataset spec\nnoms: error: unexpected ds\n"),
    (["ds", "-d", f"{SMALL}::$x"], "error: Invalid dataset name: $x\nnoms: error: unexpected ds\n"),
    (["ds", ""], "error: Empty spec\nnoms: error: unexpected ds\n"),
    (["log", f"{SMALL}::#v01rnt6j73s06gvhmapvolopgjlns2uc"],
     "error: .value does not reference a Commit object\nnoms: error: unexpected log\n"),
    (["log", "--max-lines", "x", f"{SMALL}::people"],
     'noms: error: strconv.ParseInt: parsing "x": invalid syntax, try --help\n'),
    (["show"], "noms: error: required argument 'object' not provided, try --help\n"),
])
def test_error_messages(argv: list[str], stderr: str) -> None:
    result = run(argv)
    assert (result.stdout, result.stderr, result.exit_code) == (b"", stderr, 1)


def test_value_not_found_and_unresolvable_log() -> None:
    result = run(["show", f"{SMALL}::nope"])
    assert (result.stdout, result.stderr, result.exit_code) == (b"", f"Value not found: {SMALL}::nope\n", 1)
    result = run(["show", f"{SMALL}::"])
    assert result.stderr == f"Value not found: {SMALL}::\n"
    result = run(["log", f"{SMALL}::nope"])
    assert (result.stdout, result.stderr, result.exit_code) == (b"", f"Cannot resolve spec: {SMALL}::nope\n", 1)


def test_empty_and_memory_databases(tmp_path: Path) -> None:
    empty = tmp_path / "new-db"
    assert run(["ds", str(empty)]).stdout == b""
    assert run(["root", str(empty)]).stdout == b"00000000000000000000000000000000\n"
    assert empty.is_dir()  # local databases are created on open, as in Go
    assert run(["root", "mem"]).stdout == b"00000000000000000000000000000000\n"
    assert run(["ds", "mem"]).stdout == b""
    assert run(["ds", "-d", "mem::x"]).stderr == "error: Dataset x not found\nnoms: error: unexpected ds\n"


def test_corrupt_and_missing_chunks_give_clear_errors(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    cs = nbs.new_local_store(str(corrupt))
    bad = cs.put(b"\x0d\x00\x01")
    assert cs.commit(bad, cs.root())
    cs.close()
    result = run(["ds", str(corrupt)])
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr == f"error: chunk {bad} is corrupt: invalid value kind 0x0d at offset 0\n"

    dangling = tmp_path / "dangling"
    dangling.mkdir()
    db = Database(nbs.new_local_store(str(dangling)))
    missing = nbs.Addr.of(b"never written")
    root_map = Map(0, [(String("ds"), Ref(missing, VALUE_TYPE, 1))], vr=db.store)
    assert db.cs.commit(db.store.write_value(root_map).target, db.cs.root())
    db.close()
    assert run(["ds", str(dangling)]).stdout == b"ds\n"
    result = run(["show", f"{dangling}::ds"])
    assert result.exit_code == 1 and result.stderr == f"error: commit {missing} is missing\n"


def test_errors_in_a_subprocess_have_no_traceback() -> None:
    result = run_process(["show", "ldb:x::y"])
    assert result.exit_code == 1 and result.stdout == b""
    assert result.stderr == "error: Invalid database protocol  in ldb:x\n"


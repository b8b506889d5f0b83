"""The ``noms`` CLI against the Go-written local fixtures: every FACTS.json output, exactly."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

import nbs
from nbs.addr import Addr
from nbs.noms.datas import Database, commit_parents
from nbs.noms.kind import Kind
from nbs.noms.printer import describe_type
from nbs.noms.values import Collection, Ref, Struct
from nbs.noms.walk import walk_refs
from tests.integration.nomsfixtures import FIXTURES, LOCAL_FIXTURES, CliCase, cli_cases, facts, run, run_process

CASES = cli_cases()


def assert_matches(result_stdout: bytes, result_stderr: str, code: int, expected: dict[str, object]) -> None:
    if expected.get("stdout_omitted"):
        assert len(result_stdout) == expected["stdout_len"]
        assert hashlib.sha256(result_stdout).hexdigest() == expected["stdout_sha256"]
        text = result_stdout.decode()
        assert text[:4096] == expected["stdout_head_4096"] and text[-2048:] == expected["stdout_tail_2048"]
    else:
        assert result_stdout.decode() == expected["stdout"]
    assert result_stderr == expected["stderr"]
    assert code == expected["exit_code"]


def test_every_local_fixture_output_is_covered() -> None:
    keys = {str(c) for c in CASES}
    assert {"local-small:noms_ds", "local-small:people.noms_show", "local-multitable:blob.noms_show",
            "noms-hr:noms_show_hr_value", "noms-hr:noms_log_oneline_hr"} <= keys
    assert len(CASES) == (3 + 2 * 2) + (3 + 4 * 2) + 5  # small, multitable, hr


@pytest.mark.parametrize("case", CASES, ids=str)
def test_fixture_output(case: CliCase) -> None:
    result = run(case.argv, case.cwd)
    assert_matches(result.stdout, result.stderr, result.exit_code, case.expected)


@pytest.mark.parametrize("case", [c for c in CASES if str(c) in (
    "local-small:noms_root", "local-small:people.noms_show", "noms-hr:noms_log_oneline_hr",
    "local-multitable:strings.noms_log_oneline")], ids=str)
def test_fixture_output_in_a_subprocess(case: CliCase) -> None:
    result = run_process(case.argv, case.cwd)
    assert_matches(result.stdout, result.stderr, result.exit_code, case.expected)


def test_console_script() -> None:
    data = facts("local-small")
    result = run_process(["ds", str(FIXTURES / "local-small" / "store")], console_script=True)
    assert result.stdout.decode() == data["noms_ds"]["stdout"] and result.exit_code == 0


def reachable_chunks(db: Database, *start: bytes | Ref) -> int:
    """Distinct chunks reachable from the given chunk addresses (or refs)."""
    seen: set[bytes] = set()
    pending = [bytes(s.target) if isinstance(s, Ref) else bytes(s) for s in start]
    while pending:
        addr = pending.pop()
        if addr in seen:
            continue
        seen.add(addr)
        value = db.read_value(addr)
        assert value is not None, f"missing chunk {Addr(addr)}"
        pending.extend(bytes(r.target) for r in walk_refs(value))
    return len(seen)


def first_parent_chain(db: Database, commit: Struct) -> Iterator[str]:
    while True:
        yield str(commit.hash())
        parents = commit_parents(commit)
        if not parents:
            return
        commit = db.read_commit(parents[0].target)


@pytest.mark.parametrize("fixture", ["local-small", "local-multitable"])
def test_fixture_facts(fixture: str) -> None:
    data = facts(fixture)
    db = Database(nbs.open_store(str(FIXTURES / fixture / "store")))
    try:
        assert str(db.root()) == data["root"] == data["datasets_map_hash"]
        for name, info in data["datasets"].items():
            head_ref = db.head_ref(name)
            assert head_ref is not None
            assert str(head_ref.target) == info["head_commit"] and head_ref.height == info["head_commit_height"]
            head = db.head(name)
            assert head is not None
            assert list(first_parent_chain(db, head)) == info["commit_chain_newest_first"]
            value = head.get("value")
            assert value is not None
            assert str(value.hash()) == info["head_value_hash"]
            assert value.kind.label == info["head_value_kind"]
            assert describe_type(value.type_of()) == info["head_value_type"]
            assert value.ref_to().height == info["head_value_ref_height"]
            assert (db.read_value(value.hash()) is not None) == info["head_value_is_chunk"]
            if "head_value_len" in info:
                assert isinstance(value, Collection) and value.length() == info["head_value_len"]
            assert reachable_chunks(db, head_ref.target) == info["head_commit_reachable_chunks"]
            assert reachable_chunks(db, *walk_refs(value)) == info["head_value_reachable_chunks"]
        assert reachable_chunks(db, db.root()) <= data["total_chunk_count"] == len(data["chunk_hashes_sorted"])
    finally:
        db.close()


def test_noms_hr_history() -> None:
    db = Database(nbs.open_store(str(FIXTURES / "noms-hr" / "store")))
    try:
        head = db.head("hr")
        assert head is not None and head.get("meta") == Struct("", {})
        value = head.get("value")
        assert value is not None and value.kind == Kind.MAP
        assert describe_type(value.type_of()) == \
            "Map<Number, Struct Person {\n  id: Number,\n  name: String,\n  title: String,\n}>"
        parents = commit_parents(head)
        assert [str(p.target) for p in parents] == ["5v2dpp8kt4i9jc372lempspsonld5r4p"]
        assert isinstance(parents[0], Ref)
    finally:
        db.close()


def test_show_raw_is_the_stored_chunk() -> None:
    data = facts("local-small")
    store = str(FIXTURES / "local-small" / "store")
    head = data["datasets"]["people"]["head_commit"]
    result = run(["show", "--raw", f"{store}::people"])
    assert Addr.of(result.stdout) == Addr.parse(head)
    by_hash = run(["show", "--raw", f"{store}::#{head}"])
    assert by_hash.stdout == result.stdout


@pytest.mark.parametrize("fixture", LOCAL_FIXTURES)
def test_log_full_output_lists_every_commit(fixture: str) -> None:
    data = facts(fixture)
    store = "store" if fixture == "noms-hr" else str(FIXTURES / fixture / "store")
    cwd = FIXTURES / fixture if fixture == "noms-hr" else None
    for name, info in data.get("datasets", {}).items():
        result = run(["log", "--max-lines", "2", f"{store}::{name}"], cwd)
        assert result.exit_code == 0 and result.stderr == ""
        text = result.stdout.decode()
        assert [line for line in text.splitlines() if line in info["commit_chain_newest_first"]] == \
            info["commit_chain_newest_first"]

"""Replay every step of Go's ``cli-write`` recordings and compare stdout, stderr, exit status and roots.

Steps run in order in a fresh folder per group, as recorded (cwd = the group
folder, stdin as recorded, TZ=UTC).  Progress output (``ESC[2K\\r...``) is
compared by shape where its repaints or figures depend on timing.  Steps
where Go crashed must fail cleanly here (one ``error:`` line, status 1, no
store change); the Go bugs of ``GO_BUGS`` are checked in their own tests.
Exit status: where Go printed an error but exited 0, this port exits 1.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.aws_server import unique_name
from tests.daemon_harness import Daemon
from tests.integration.cliwrite import GO_BUGS, GROUPS, Outcome, expected_stdout, facts, prepare_folder, run_step, \
    status_shape


def _expected_exit(step: dict[str, Any]) -> int:
    return 1 if step["exit_code"] != 0 or step["stderr"] else 0


def _mismatch(group: str, index: int, step: dict[str, Any], got: Outcome) -> str | None:
    """Why ``got`` differs from Go's recording of ``step``, or None."""
    if (group, index) in GO_BUGS:
        return None
    if step.get("go_crashed"):
        lines = got.stderr.splitlines()
        if got.exit_code != 1 or len(lines) != 1 or not lines[0].startswith("error: ") or "Traceback" in got.stderr:
            return f"expected one clean error line for a Go crash, got {got.stderr!r} (exit {got.exit_code})"
        return None if got.roots == step["roots_after"] else f"roots {got.roots} != {step['roots_after']}"
    differs = set(step.get("differs_between_runs") or [])
    if not differs <= {"stdout"}:
        return None
    if got.roots != step["roots_after"]:
        return f"roots {got.roots} != {step['roots_after']}"
    if got.stderr != step["stderr"]:
        return f"stderr {got.stderr!r} != {step['stderr']!r}"
    if got.exit_code != _expected_exit(step):
        return f"exit {got.exit_code} != {_expected_exit(step)}"
    want = expected_stdout(step)
    if step.get("uses_status_printf"):
        assert want is not None
        shape, want_shape = status_shape(got.stdout.decode()), status_shape(want.decode())
        return None if shape == want_shape else f"status {shape} != {want_shape}"
    if want is None:
        digest = hashlib.sha256(got.stdout).hexdigest()
        return None if digest == step["stdout_sha256"] else f"stdout sha256 {digest} != {step['stdout_sha256']}"
    return None if got.stdout == want else f"stdout {got.stdout!r} != {want!r}"


@pytest.mark.parametrize("group", GROUPS)
def test_replay_group(group: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    prepare_folder(group, tmp_path)
    mismatches = []
    for index, step in enumerate(facts(group)["steps"]):
        problem = _mismatch(group, index, step, run_step(step, tmp_path))
        if problem is not None:
            mismatches.append(f"[{index}] {' '.join(step['argv'])}: {problem}")
    assert mismatches == []


@pytest.mark.parametrize("group", ["03_collections", "04_commit", "05_diff", "06_sync", "07_json", "08_merge",
                                   "10_ds_root"])
def test_replay_group_through_nbsd(group: str, nbsd_daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same recordings with every store opened through the daemon (``noms --nbsd``).

    Not 02_blob (the same code path as 05_diff's blobs, and slow) nor 09_stats: ``stats`` needs the
    store's tables, which only a directly opened store has.
    """
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    folder = Path(nbsd_daemon.store_path(unique_name(group.replace("_", "-"))))
    folder.mkdir()
    prepare_folder(group, folder)
    mismatches = []
    for index, step in enumerate(facts(group)["steps"]):
        via = dict(step, argv=[step["argv"][0], "--nbsd", nbsd_daemon.endpoint, *step["argv"][1:]])
        problem = _mismatch(group, index, step, run_step(via, folder))
        if problem is not None:
            mismatches.append(f"[{index}] {' '.join(step['argv'])}: {problem}")
    assert mismatches == []


def test_commit_without_date_stamps_now_in_utc(tmp_path: Path) -> None:
    """04_commit steps 41-42, whose recorded output holds Go's clock: the date is now, RFC 3339, UTC."""
    steps = facts("04_commit")["steps"]
    for step in steps[40:42]:
        assert run_step(step, tmp_path).exit_code == 0
    got = run_step(steps[42], tmp_path).stdout.decode()
    assert _unstamped(got) == _unstamped(str(steps[42]["stdout"]))
    stamped = datetime.datetime.strptime(re.findall(r'Date:\s+"(.*)"', got)[0], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(stamped - datetime.datetime.now(datetime.UTC).replace(tzinfo=None)).total_seconds() < 600


def _unstamped(text: str) -> str:
    """``text`` with hashes and RFC 3339 UTC times masked."""
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<date>", re.sub(r"[0-9a-v]{32}", "<hash>", text))

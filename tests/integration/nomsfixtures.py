"""Helpers for the ``noms`` CLI tests: fixture locations, FACTS.json cases and CLI runners."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbs.noms.cli import main

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("NOMS_FIXTURES", REPO.parent / "shared" / "fixtures"))
LOCAL_FIXTURES = ("local-small", "local-multitable", "noms-hr")


def facts(name: str) -> dict[str, Any]:
    path = FIXTURES / name / "FACTS.json"
    if not path.is_file():
        raise FileNotFoundError(f"fixture facts {path} are missing (set NOMS_FIXTURES)")
    result: dict[str, Any] = json.loads(path.read_text())
    return result


@dataclass
class Result:
    stdout: bytes
    stderr: str
    exit_code: int


def run(argv: list[str], cwd: Path | None = None) -> Result:
    """Run the CLI in this process (``cwd`` is entered for the call)."""
    out, err = io.BytesIO(), io.StringIO()
    previous = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        code = main(argv, out, err)
    finally:
        os.chdir(previous)
    return Result(out.getvalue(), err.getvalue(), code)


def run_process(argv: list[str], cwd: Path | None = None, console_script: bool = False) -> Result:
    """Run the CLI as a real subprocess (the ``noms`` console script or ``python -m``)."""
    if console_script:
        script = Path(sys.executable).with_name("noms")
        if not script.exists():
            raise FileNotFoundError(f"console script {script} is not installed")
        command = [str(script)]
    else:
        command = [sys.executable, "-m", "nbs.noms.cli"]
    proc = subprocess.run(command + argv, cwd=cwd, capture_output=True, timeout=120)
    return Result(proc.stdout, proc.stderr.decode(), proc.returncode)


@dataclass
class CliCase:
    fixture: str
    key: str
    argv: list[str]
    cwd: Path | None
    expected: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.fixture}:{self.key}"


def cli_cases() -> list[CliCase]:
    """Every ``noms_*`` output recorded in the local fixtures' FACTS.json."""
    cases = []
    for name in LOCAL_FIXTURES:
        data = facts(name)
        entries = [(k, v) for k, v in data.items() if k.startswith("noms_")]
        for ds, info in data.get("datasets", {}).items():
            entries += [(f"{ds}.{k}", v) for k, v in info.items() if k.startswith("noms_")]
        for key, entry in entries:
            argv, cwd = localize(name, entry["argv"][1:])
            cases.append(CliCase(name, key, argv, cwd, entry))
    return cases


def localize(fixture: str, argv: list[str]) -> tuple[list[str], Path | None]:
    """Point FACTS argv (``fixtures/<name>/store...``) at the real fixture directory.

    noms-hr ran with its own directory as the working directory and the spec ``store``.
    """
    prefix = f"fixtures/{fixture}/store"
    localized = [str(FIXTURES / fixture / "store") + a[len(prefix):] if a.startswith(prefix) else a for a in argv]
    return localized, (FIXTURES / fixture if fixture == "noms-hr" else None)


def writable_copy(fixture: str, dest: Path) -> Path:
    """A writable copy of a fixture's store directory (fixtures are read-only)."""
    target = dest / fixture / "store"
    shutil.copytree(FIXTURES / fixture / "store", target)
    for path in [target, *target.iterdir()]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return target

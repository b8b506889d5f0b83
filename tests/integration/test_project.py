"""Project-level checks: types, the systemd unit, and README/CI consistency."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = (ROOT / "systemd" / "nbsd.service").read_text()
    nbsd = Path(sys.executable).parent / "nbsd"
    assert nbsd.exists(), "the nbsd console script is installed next to the interpreter"
    (tmp_path / "nbsd.service").write_text(unit.replace("/usr/local/bin/nbsd", str(nbsd)))
    proc = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "nbsd.service")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for line in ["Type=notify", "RuntimeDirectory=nbsd", "CacheDirectory=nbsd", "WatchdogSec=", "NoNewPrivileges=yes"]:
        assert line in unit


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^    (python3 -m venv .*)$", readme, re.M)
    assert len(commands) == 2, "the README has exactly two set-up commands"
    main_job, test_command = commands
    assert "nbsd demo" in main_job
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_no_unused_imports_or_undefined_names() -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F,E9", "nbs", "daemon", "client",
                           "tests", "bench"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr

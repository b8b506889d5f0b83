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


def test_ruff_is_clean() -> None:
    """The project's own rule set ([tool.ruff] in pyproject), as CI runs it."""
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unit_file_points_at_this_projects_files() -> None:
    """Documentation= names the README and protocol the install step copies; the config example exists."""
    unit = (ROOT / "systemd" / "nbsd.service").read_text()
    docs = re.search(r"^Documentation=(.*)$", unit, re.M)
    assert docs is not None
    copied = "install -D -m 0644 README.md docs/PROTOCOL.md -t /usr/local/share/doc/nbsd/"
    assert copied in unit and (ROOT / "README.md").exists() and (ROOT / "docs" / "PROTOCOL.md").exists()
    assert docs.group(1).split() == ["file:/usr/local/share/doc/nbsd/README.md",
                                     "file:/usr/local/share/doc/nbsd/PROTOCOL.md"]
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert "install -D -m 0640 systemd/nbsd.toml /etc/nbsd/nbsd.toml" in unit and "pip install nbs-aws" not in unit
    assert (ROOT / "systemd" / "nbsd.toml").exists()
    readme = (ROOT / "README.md").read_text()
    for line in unit.splitlines():
        if line.startswith("#   install ") or line.startswith("#   useradd "):
            assert line.removeprefix("#   ").split("  #")[0].strip() in readme, line


def test_ci_runs_ruff_before_the_tests() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "ruff check" in ci and ci.index("ruff check") < ci.index("pytest")
    assert "[tool.ruff" in (ROOT / "pyproject.toml").read_text()

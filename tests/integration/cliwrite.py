"""The ``cli-write`` fixtures: 318 steps recorded from Go's ``noms``, and how to replay them here.

Each group folder holds FACTS.json (argv, stdin, stdout, stderr, exit status
and store roots after every step) and the input files Go read; inputs over
200 KiB were deleted and are regenerated from the recorded generator.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbs.noms.cli import main
from nbs.noms.status import CLEAR_LINE
from tests.integration.nomsfixtures import FIXTURES

CLI_WRITE = FIXTURES / "cli-write"
GROUPS = sorted(p.name for p in CLI_WRITE.iterdir() if (p / "FACTS.json").is_file()) if CLI_WRITE.is_dir() else []
GO_BUGS = {("02_blob", 1), ("02_blob", 2), ("03_collections", 39)}
"""Steps where Go is wrong and this port is not: ``blob put`` of a file under 1 MiB stores the empty blob,
``set del`` of a present item panics."""

_SIZE = re.compile(r"\d+(?:\.\d+)? [kMGTPE]?B")
_DURATION = re.compile(r"\bin \d+(?:\.\d+)?(?:ms|s|m\d+(?:\.\d+)?s|h\S*)")


def gen(n: int) -> bytes:
    """The fixtures' input generator: SHA-256 of 0, 1, 2, ... (8-byte little endian), cut to ``n`` bytes."""
    return b"".join(hashlib.sha256(i.to_bytes(8, "little")).digest() for i in range((n + 31) // 32))[:n]


def facts(group: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((CLI_WRITE / group / "FACTS.json").read_text())
    return result


def prepare_folder(group: str, folder: Path) -> None:
    """A fresh copy of the group folder's inputs (no stores, no outputs), with deleted inputs regenerated."""
    data = facts(group)
    for name, info in data["inputs"].items():
        target = folder / name
        if info.get("stored_in_folder"):
            shutil.copyfile(CLI_WRITE / group / name, target)
            continue
        content = gen(info["len"])
        if "XOR" in info["generator"]:
            flipped = bytearray(content)
            flipped[500000] ^= 0xFF
            content = bytes(flipped)
        assert hashlib.sha256(content).hexdigest() == info["sha256"], name
        target.write_bytes(content)


@dataclass
class Outcome:
    stdout: bytes
    stderr: str
    exit_code: int
    roots: dict[str, str | None]


def store_root(folder: Path) -> str | None:
    manifest = folder / "manifest"
    if not manifest.is_file():
        return None
    return manifest.read_text().split(":")[3]


def run_step(step: dict[str, Any], folder: Path) -> Outcome:
    out, err = io.BytesIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(folder)
    try:
        code = main(step["argv"][1:], out, err, io.BytesIO(step["stdin"].encode()))
    finally:
        os.chdir(previous)
    roots = {name: store_root(folder / name) for name in step.get("roots_after") or {}}
    return Outcome(out.getvalue(), err.getvalue(), code, roots)


def expected_stdout(step: dict[str, Any]) -> bytes | None:
    """Go's stdout bytes, or None when only its length and hash were recorded."""
    if step["stdout"] is not None:
        return str(step["stdout"]).encode("utf-8", "surrogateescape")
    if "stdout_base64" in step:
        return base64.b64decode(step["stdout_base64"])
    return None


def status_shape(text: str) -> tuple[str, str, str]:
    """Progress output reduced to what is deterministic: text before the first repaint, first and last line.

    Sizes, rates and durations are masked; repaints in between depend on timing.
    """
    head, _, rest = text.partition(CLEAR_LINE)
    lines = rest.split(CLEAR_LINE) if rest else [""]
    return head, _mask(lines[0]), _mask(lines[-1])


def _mask(line: str) -> str:
    return _DURATION.sub("in <t>", _SIZE.sub("<size>", line))

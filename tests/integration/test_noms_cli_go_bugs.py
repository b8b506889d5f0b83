"""Where Go's ``noms`` is wrong (cli-write README), this command does the right thing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.cliwrite import gen
from tests.integration.nomsfixtures import run

SIZES = [0, 1, 10, 4095, 4096, 102_400, (1 << 20) - 1, 1 << 20, (1 << 20) + 5]


@pytest.mark.parametrize("size", SIZES)
def test_blob_put_then_export_gives_back_the_file(tmp_path: Path, size: int) -> None:
    data = gen(size)
    (tmp_path / "in.bin").write_bytes(data)
    (tmp_path / "out.bin").write_bytes(b"x" * (size + 100))  # a longer old file: export truncates it
    put = run(["blob", "put", "--concurrency", "1", "in.bin", "store"], cwd=tmp_path)
    assert put.exit_code == 0 and put.stderr == ""
    blob = put.stdout.decode().strip()
    if size:
        assert blob != "#2eulo8v8rihcjm0e93brv14dopakkder"  # Go stores the empty blob for files under 1 MiB
    assert run(["blob", "export", f"store::{blob}"], cwd=tmp_path).stdout == data
    exported = run(["blob", "export", f"store::{blob}", "out.bin"], cwd=tmp_path)
    assert exported.exit_code == 0 and exported.stdout.startswith(b"\x1b[2K\r")
    assert (tmp_path / "out.bin").read_bytes() == data


def test_set_del_removes_present_items(tmp_path: Path) -> None:
    lst = run(["list", "new", "store", "1", "2"], cwd=tmp_path).stdout.decode().strip()
    made = run(["set", "new", "store", "1", "2", '"a"', f"@{lst}"], cwd=tmp_path).stdout.decode().strip()
    result = run(["set", "del", f"store::{made}", "1", '"a"', f"@{lst}", "99"], cwd=tmp_path)
    assert result.exit_code == 0 and result.stderr == ""
    assert run(["show", "store::" + result.stdout.decode().strip()], cwd=tmp_path).stdout == b"set {\n  2,\n}\n"


@pytest.mark.parametrize("argv, error", [
    (["list", "del", "store::{list}", "1", "5"], "error: cannot remove 5 items at index 1 of a list of length 2\n"),
    (["list", "new", "store", "NaN"], "error: Invalid value: NaN at position 0: NaN is not a supported number\n"),
    (["list", "new", "store", "-Inf"],
     "noms: error: unknown short flag '-I', try --help\n"),
    (["list", "new", "store", "--", "-Inf"],
     "error: Invalid value: -Inf at position 0: -Inf is not a supported number\n"),
    (["blob", "put", "--concurrency", "0", "in.bin", "store"], "error: --concurrency must be at least 1, not 0\n"),
    (["commit", "#00000000000000000000000000000000", "store::ds"],
     "error: Error resolving value: #00000000000000000000000000000000\n"),
    (["json", "out", "store::#00000000000000000000000000000000", "@"],
     "error: No value at store::#00000000000000000000000000000000\n"),
    (["struct", "new", "--name", "bad name", "store"], 'error: Invalid struct name: "bad name"\n'),
])
def test_inputs_that_crash_go_fail_cleanly(tmp_path: Path, argv: list[str], error: str) -> None:
    (tmp_path / "in.bin").write_bytes(b"data")
    lst = run(["list", "new", "store", "1", "2"], cwd=tmp_path).stdout.decode().strip()
    root = (tmp_path / "store" / "manifest").read_text().split(":")[3]
    result = run([arg.replace("{list}", lst) for arg in argv], cwd=tmp_path)
    assert (result.stdout, result.stderr, result.exit_code) == (b"", error, 1)
    assert (tmp_path / "store" / "manifest").read_text().split(":")[3] == root


def test_errors_that_go_exits_0_on_exit_1(tmp_path: Path) -> None:
    result = run(["blob", "put", "in.bin", "store::ds"], cwd=tmp_path)
    assert result.exit_code == 1 and result.stderr == "error: couldn't stat file\nnoms: error: unexpected blob\n"
    (tmp_path / "in.bin").write_bytes(b"data")
    result = run(["blob", "put", "in.bin", "store::ds"], cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stderr == "Could not open database: Invalid database protocol  in store::ds\n"

"""Bad command lines never crash ``noms``: random arguments to every write command (bounded fuzzing).

Each run gets exit status 0 or 1 and, on 1, ``error:`` lines or kingpin's
``noms: error:`` line - never a traceback or another exception.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbs.noms.cli import main

COMMANDS = [["list", "new", "store"], ["list", "append", "store::#{list}"], ["list", "insert", "1", "store::#{list}"],
            ["list", "del", "store::#{list}"], ["map", "new", "store"], ["map", "set", "store::#{map}"],
            ["map", "del", "store::#{map}"], ["set", "new", "store"], ["set", "insert", "store::#{set}"],
            ["set", "del", "store::#{set}"], ["struct", "new", "store"], ["struct", "set", "store::#{struct}"],
            ["struct", "del", "store::#{struct}"], ["commit"], ["diff"], ["sync"], ["json", "out"], ["json", "in"],
            ["merge", "store"], ["root", "--update"], ["show"], ["log"], ["blob", "export"], ["blob", "put"],
            ["stats"], ["ds", "-d"]]
TOKENS = st.one_of(
    st.sampled_from(["", "1", "-1", "NaN", "1e400", "true", '"a"', '"', '"\\', '"a\\n"', "@", "@#{list}", "@x[",
                     "#{list}", "#zz", "store", "store::ds", "store::#{list}[9]", "store::#{map}.x", "store::x y",
                     "mem", "bad:spec", "::", "[", "#00000000000000000000000000000000", "store::ds.value", "@ds",
                     "--", "-", "k", "0", "99999999999999999999", "in.json", "@", "\x00", "\U0001f4a9"]),
    st.text(max_size=8))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "in.json").write_text('{"a": [1, null]}')
    hashes = {}
    previous = os.getcwd()
    os.chdir(folder)
    try:
        for kind, args in [("list", ["1", "2"]), ("map", ['"x"', "1"]), ("set", ["1"]), ("struct", ["a", "1"])]:
            out = io.BytesIO()
            assert main([kind, "new", "store", *args], out, io.StringIO()) == 0
            hashes[kind] = out.getvalue().decode().strip().lstrip("#")
        assert main(["commit", f"#{hashes['list']}", "store::ds"], io.BytesIO(), io.StringIO()) == 0
    finally:
        os.chdir(previous)
    yield folder, hashes


def _fill(part: str, hashes: dict[str, str]) -> str:
    for kind, digest in hashes.items():
        part = part.replace("{" + kind + "}", digest)
    return part


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(COMMANDS), st.lists(TOKENS, max_size=4))
def test_random_arguments_never_crash(workdir: tuple[Path, dict[str, str]], command: list[str],
                                      tokens: list[str]) -> None:
    folder, hashes = workdir
    argv = [_fill(part, hashes) for part in command + tokens]
    out, err = io.BytesIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(folder)
    try:
        code = main(argv, out, err, io.BytesIO(b"n\n"))
    finally:
        os.chdir(previous)
    assert code in (0, 1), (argv, err.getvalue())
    if code == 1:
        assert err.getvalue().startswith(("error: ", "noms: error: ", "Could not open database: ", "Value not found",
                                          "Cannot resolve spec", "Invalid hash", "Root of database", "Invalid root",
                                          "--raw and")), (argv, err.getvalue())
    assert "Traceback" not in err.getvalue()

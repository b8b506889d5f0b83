"""``noms ds -d`` on writable copies of the fixtures: printed line, new root hash, remaining datasets.

The expected root is computed here from NOMS-VALUES.md 8.2 directly (the root map is one leaf
``06 00 count (String name, Ref<Value> to the head)*`` for a handful of datasets), independently
of the encoder under test.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from nbs.addr import Addr
from nbs.noms.codec import encode_uvarint
from tests.integration.nomsfixtures import facts, localize, run, run_process, writable_copy

EMPTY_MAP_ROOT = str(Addr(hashlib.sha512(bytes.fromhex("060000")).digest()[:20]))


def expected_root(heads: dict[str, tuple[str, int]]) -> str:
    """Hash of the root-map leaf for ``{dataset: (head commit hash, head height)}``."""
    data = bytearray(b"\x06\x00") + encode_uvarint(len(heads))
    for name in sorted(heads, key=str.encode):
        data += b"\x02" + encode_uvarint(len(name.encode())) + name.encode()
        data += b"\x07" + Addr.parse(heads[name][0]) + b"\x04" + encode_uvarint(heads[name][1])
    return str(Addr(hashlib.sha512(bytes(data)).digest()[:20]))


def heads_of(data: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {name: (info["head_commit"], info["head_commit_height"]) for name, info in data["datasets"].items()}


def test_expected_root_rule_reproduces_the_fixture_roots() -> None:
    for fixture in ("local-small", "local-multitable"):
        data = facts(fixture)
        assert expected_root(heads_of(data)) == data["root"]


@pytest.mark.parametrize("fixture, victim", [("local-small", "notes"), ("local-small", "people"),
                                             ("local-multitable", "counter"), ("local-multitable", "blob")])
def test_delete_dataset(tmp_path: Path, fixture: str, victim: str) -> None:
    data = facts(fixture)
    store = writable_copy(fixture, tmp_path)
    spec = f"{store}::{victim}"
    result = run(["ds", "-d", spec])
    assert result.stderr == "" and result.exit_code == 0
    assert result.stdout.decode() == f"Deleted {spec} (was #{data['datasets'][victim]['head_commit']})\n"

    remaining = {k: v for k, v in heads_of(data).items() if k != victim}
    assert run(["root", str(store)]).stdout.decode() == expected_root(remaining) + "\n"
    assert run(["ds", str(store)]).stdout.decode() == "".join(f"{n}\n" for n in sorted(remaining))
    for name in remaining:
        for key in ("noms_show", "noms_log_oneline"):
            expected = data["datasets"][name][key]
            argv, _ = localize(fixture, expected["argv"][1:])
            argv[-1] = str(store) + argv[-1][argv[-1].index("::"):]
            got = run(argv)
            if expected.get("stdout_omitted"):
                assert hashlib.sha256(got.stdout).hexdigest() == expected["stdout_sha256"]
            else:
                assert got.stdout.decode() == expected["stdout"]
    gone = run(["show", spec])
    assert gone.stdout == b"" and gone.stderr == f"Value not found: {spec}\n" and gone.exit_code == 1


def test_delete_every_dataset_leaves_the_empty_map(tmp_path: Path) -> None:
    store = writable_copy("local-small", tmp_path)
    for name in ("people", "notes"):
        assert run(["ds", "-d", f"{store}::{name}"]).exit_code == 0
    assert run(["root", str(store)]).stdout.decode() == EMPTY_MAP_ROOT + "\n"
    assert run(["ds", str(store)]).stdout == b""


def test_delete_in_noms_hr_with_a_relative_spec(tmp_path: Path) -> None:
    data = facts("noms-hr")
    store = writable_copy("noms-hr", tmp_path)
    result = run(["ds", "-d", "store::hr"], cwd=store.parent)
    assert result.stdout.decode() == "Deleted store::hr (was #f3i2rns24jqj53p0r241vtumqn9atn85)\n"
    assert run(["root", "store"], cwd=store.parent).stdout.decode() == EMPTY_MAP_ROOT + "\n"
    assert data["noms_root"]["stdout"] != EMPTY_MAP_ROOT + "\n"


def test_delete_missing_dataset(tmp_path: Path) -> None:
    data = facts("local-small")
    store = writable_copy("local-small", tmp_path)
    result = run(["ds", "-d", f"{store}::nope"])
    assert result.stdout == b"" and result.exit_code == 1
    assert result.stderr == "error: Dataset nope not found\nnoms: error: unexpected ds\n"  # Go's usage line
    assert run(["root", str(store)]).stdout.decode() == data["root"] + "\n"


def test_delete_in_a_subprocess(tmp_path: Path) -> None:
    data = facts("local-multitable")
    store = writable_copy("local-multitable", tmp_path)
    result = run_process(["ds", "--delete", f"nbs:{store}::strings"], console_script=True)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.decode() == \
        f"Deleted nbs:{store}::strings (was #{data['datasets']['strings']['head_commit']})\n"
    remaining = {k: v for k, v in heads_of(data).items() if k != "strings"}
    assert run_process(["root", str(store)]).stdout.decode() == expected_root(remaining) + "\n"

"""The noms command on the aws-small dump in moto: every FACTS.json output, directly and through nbsd."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.aws_server import MotoServer
from tests.daemon_harness import Daemon
from tests.integration.nomsfixtures import facts, run, run_process
from tests.integration.test_noms_cli_fixtures import assert_matches

FACTS = facts("aws-small")


def cases() -> list[tuple[str, dict[str, Any]]]:
    found = [(k, v) for k, v in FACTS.items() if k.startswith("noms_")]
    for ds, info in FACTS["datasets"].items():
        found += [(f"{ds}.{k}", v) for k, v in info.items() if k.startswith("noms_")]
    return found


CASES = cases()


def test_every_output_is_covered() -> None:
    assert {k for k, _ in CASES} == {"noms_ds", "noms_root", "noms_version", "notes.noms_log_oneline",
                                     "notes.noms_show", "people.noms_log_oneline", "people.noms_show"}


@pytest.mark.parametrize("key,case", CASES, ids=[k for k, _ in CASES])
def test_output_directly(aws_small: tuple[MotoServer, str, str], monkeypatch: pytest.MonkeyPatch,
                         key: str, case: dict[str, Any]) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_small[0].endpoint)  # the argv is exactly Go's
    result = run(case["argv"][1:])
    assert_matches(result.stdout, result.stderr, result.exit_code, case)


@pytest.fixture(scope="module")
def daemon(aws_small: tuple[MotoServer, str, str]) -> Iterator[Daemon]:
    server, table, bucket = aws_small
    with Daemon(extra=["--aws-endpoint", server.endpoint, "--aws-store", f"{table}:{bucket}/*"]) as d:
        yield d


@pytest.mark.parametrize("key,case", CASES, ids=[k for k, _ in CASES])
def test_output_through_nbsd(daemon: Daemon, key: str, case: dict[str, Any]) -> None:
    result = run(["--nbsd", daemon.endpoint, *case["argv"][1:]])
    assert_matches(result.stdout, result.stderr, result.exit_code, case)


def test_subprocess_with_endpoint_in_the_spec(aws_small: tuple[MotoServer, str, str]) -> None:
    case = FACTS["datasets"]["people"]["noms_show"]
    spec = case["argv"][2].replace("/small::", f"/small?endpoint={aws_small[0].endpoint}::")
    result = run_process(["show", spec])
    assert_matches(result.stdout, result.stderr, result.exit_code, case)

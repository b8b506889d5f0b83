"""The noms command through nbsd: every local fixture's FACTS.json output, exactly as direct access."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nbs.noms.spec import NBSD_ENV
from tests.daemon_harness import Daemon
from tests.integration.nomsfixtures import FIXTURES, CliCase, cli_cases, facts, run, run_process, writable_copy
from tests.integration.test_noms_cli_fixtures import assert_matches

CASES = cli_cases()


@pytest.fixture(scope="module")
def fixtures_daemon() -> Iterator[Daemon]:
    with Daemon(extra=["--local-root", str(FIXTURES)]) as daemon:
        yield daemon


@pytest.mark.parametrize("case", CASES, ids=str)
def test_fixture_output_through_nbsd(fixtures_daemon: Daemon, case: CliCase) -> None:
    result = run(["--nbsd", fixtures_daemon.endpoint, *case.argv], case.cwd)
    assert_matches(result.stdout, result.stderr, result.exit_code, case.expected)


def test_environment_variable_selects_nbsd(fixtures_daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    before = fixtures_daemon.stats()["requests"].get("open", 0)
    monkeypatch.setenv(NBSD_ENV, fixtures_daemon.endpoint)
    result = run(["root", str(FIXTURES / "local-small" / "store")])
    assert result.stdout.decode() == facts("local-small")["noms_root"]["stdout"]
    assert fixtures_daemon.stats()["requests"]["open"] == before + 1


def test_subprocess_through_nbsd(fixtures_daemon: Daemon) -> None:
    data = facts("local-small")["datasets"]["people"]["noms_show"]
    result = run_process(["--nbsd", fixtures_daemon.endpoint, "show",
                          str(FIXTURES / "local-small" / "store") + "::people"])
    assert_matches(result.stdout, result.stderr, result.exit_code, data)


def test_delete_dataset_through_nbsd(tmp_path: Path) -> None:
    with Daemon() as daemon:
        store = writable_copy("local-small", Path(daemon.stores))
        direct_copy = writable_copy("local-small", tmp_path)
        via = run(["--nbsd", daemon.endpoint, "ds", "-d", f"{store}::notes"])
        direct = run(["ds", "-d", f"{direct_copy}::notes"])
        assert via.exit_code == direct.exit_code == 0
        assert via.stdout.replace(str(store).encode(), b"X") == direct.stdout.replace(str(direct_copy).encode(), b"X")
        root_via = run(["--nbsd", daemon.endpoint, "root", str(store)]).stdout
        assert root_via == run(["root", str(direct_copy)]).stdout
        assert run(["ds", str(store)]).stdout == b"people\n"


def test_outside_the_daemons_roots_is_an_error_message(tmp_path: Path) -> None:
    with Daemon() as daemon:
        result = run(["--nbsd", daemon.endpoint, "ds", str(tmp_path)])
        assert result.exit_code == 1 and result.stderr.startswith("error: ") and "local roots" in result.stderr

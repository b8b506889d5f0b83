"""The pieces of ``nbs verify`` / ``nbs gc`` that need no store: durations, the age rule, the gc state, specs."""

from __future__ import annotations

import io

import pytest

from nbs.admin.gc import age, parse_duration
from nbs.admin.gc_state import decode_state, encode_state
from nbs.admin.location import AWSLocation, LocalLocation, parse_location
from nbs.admin.progress import terminal_progress
from nbs.errors import SpecError
from nbs.spec import parse_store_spec


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("15m", 900), ("24h", 86400), ("7d", 604800),
                                           ("2w", 1209600), ("1h30m", 5400), ("0", 0), ("0s", 0), ("1.5s", 1.5)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "1x", "h", "1h 30m", "-1s", "tomorrow", "1e9s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_age_counts_first_sightings_only_once_written_min_age_ago() -> None:
    candidates = [("young", 95.0), ("old-new", 10.0), ("old-seen", 10.0), ("old-due", 10.0)]
    kept, ripe = age(candidates, {"young": 1.0, "old-seen": 95.0, "old-due": 89.0, "gone": 1.0}, 100.0, 10.0)
    assert kept == {"old-new": 100.0, "old-seen": 95.0, "old-due": 89.0}  # "young" forgets its sighting
    assert ripe == {"old-due"}
    assert age(candidates, {}, 100.0, 0.0)[1] == {name for name, _ in candidates}


def test_state_round_trips_and_a_garbled_one_is_a_warning() -> None:
    warnings: list[str] = []
    assert decode_state(encode_state({"b": 2.5, "a": 1.0}), "here", warnings) == {"a": 1.0, "b": 2.5}
    for raw in (b"not json", b'{"format": 2, "first_seen": {}}', b'{"format": 1}', b"[]",
                b'{"format": 1, "first_seen": {"a": "soon"}}'):
        assert decode_state(raw, "here", warnings) == {}
    assert len(warnings) == 5 and all(w.startswith("ignored the unreadable gc state here") for w in warnings)


def test_bucket_specs() -> None:
    for text in ("aws://t:b", "aws://t:b/", "aws:t/b", "aws:t/b/"):
        spec = parse_store_spec(text, bucket_only=True)
        assert (spec.table, spec.bucket, spec.name, str(spec)) == ("t", "b", "", "aws://t:b")
    assert parse_store_spec("aws://t:b/db?region=r", bucket_only=True).name == "db"
    with pytest.raises(SpecError):
        parse_store_spec("aws://t:b")


def test_locations() -> None:
    assert parse_location("/some/dir", need_store=True) == LocalLocation("/some/dir")
    location = parse_location("aws://t:b?endpoint=http://127.0.0.1:9&region=r", need_store=False)
    assert isinstance(location, AWSLocation) and str(location) == "aws://t:b"
    assert (location.region, location.endpoint_url) == ("r", "http://127.0.0.1:9")
    with pytest.raises(SpecError, match="names no store"):
        parse_location("aws:t/b", need_store=True)
    with pytest.raises(SpecError, match="memory store"):
        parse_location("mem", need_store=False)


def test_progress_draws_nothing_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    bar = terminal_progress("verify", 100, "B")
    bar.update(50)
    bar.close()
    assert err.getvalue() == ""

"""Interop: stores written by Go Noms are read exactly as FACTS.json describes them."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from nbs.addr import Addr
from nbs.factory import new_local_store
from nbs.file_manifest import FileManifest, format_manifest, parse_manifest
from nbs.index_cache import IndexCache
from nbs.fd_cache import FDCache
from nbs.file_table_persister import FSTablePersister
from nbs.stats import Stats
from tests.helpers import FIXTURES, check_table_facts

FULL = ["local-small", "local-multitable"]
ALL_LOCAL = [*FULL, "noms-hr"]


def facts(name: str) -> dict[str, Any]:
    with open(FIXTURES / name / "FACTS.json") as f:
        return json.load(f)  # type: ignore[no-any-return]


def store_dir(name: str) -> str:
    return str(FIXTURES / name / "store")


@pytest.mark.parametrize("fixture", ALL_LOCAL)
def test_manifest_text_round_trips(fixture: str) -> None:
    raw = open(os.path.join(store_dir(fixture), "manifest")).read()
    assert raw == facts(fixture)["manifest_file_raw"]
    assert format_manifest(parse_manifest(raw, fixture)) == raw


@pytest.mark.parametrize("fixture", ALL_LOCAL)
def test_root_and_manifest_contents(fixture: str) -> None:
    f = facts(fixture)
    store = new_local_store(store_dir(fixture))
    assert str(store.root()) == f["noms_root"]["stdout"].strip()
    contents = FileManifest(store_dir(fixture)).parse_if_exists(Stats())
    assert contents is not None
    if "manifest" in f:
        m = f["manifest"]
        assert (contents.vers, str(contents.lock), str(contents.root)) == (m["noms_version"], m["lock"], m["root"])
        assert [(str(s.name), s.chunk_count) for s in contents.specs] == \
            [(t["name"], t["chunk_count"]) for t in m["tables"]]
        assert store.version() == m["noms_version"]


@pytest.mark.parametrize("fixture", FULL)
def test_every_table_matches_facts(fixture: str) -> None:
    f = facts(fixture)
    for t in f["tables"]:
        check_table_facts(open(os.path.join(store_dir(fixture), t["name"]), "rb").read(), t)
    on_disk = sorted(os.listdir(store_dir(fixture)))
    assert on_disk == sorted(x["name"] for x in f["files"])


@pytest.mark.parametrize("fixture", FULL)
def test_every_chunk_readable_and_verified(fixture: str) -> None:
    f = facts(fixture)
    store = new_local_store(store_dir(fixture))
    hashes = [Addr.parse(h) for h in f["chunk_hashes_sorted"]]
    got = store.get_many(hashes)
    assert len(got) == len(hashes)
    assert all(Addr.of(data) == h for h, data in got.items())
    for h in hashes[:: max(1, len(hashes) // 50)]:
        assert store.get(h) == got[h] and store.has(h)
    assert store.has_many(hashes) == set()
    assert store.count() == f["total_chunk_count"] == f["store_count"]
    assert store.stats_summary() == f["generation"]["stats_summary"]


@pytest.mark.parametrize("fixture", FULL)
def test_extract_yields_every_chunk_in_table_order(fixture: str) -> None:
    f = facts(fixture)
    persister = FSTablePersister(store_dir(fixture), FDCache(4), IndexCache(1 << 20))
    for t in f["tables"][:10]:
        src = persister.open(Addr.parse(t["name"]), t["chunk_count"], Stats())
        extracted = list(src.extract())
        assert [str(Addr(a)) for a, _ in extracted] == t["hashes_in_ordinal_order"]
        assert sum(len(d) for _, d in extracted) == t["uncompressed_len"]


def test_noms_hr_chunks_readable() -> None:
    store = new_local_store(store_dir("noms-hr"))
    root = store.get(store.root())
    assert root is not None and Addr.of(root) == store.root()

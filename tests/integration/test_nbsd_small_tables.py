"""The daemon keeps the bytes of small AWS tables under one configured budget, across tables and buckets."""

from __future__ import annotations

import os
from pathlib import Path

from nbs.spec import StoreSpec
from nbsd.config import AWSConfig, Config
from nbsd.stores import StoreOpener
from tests.aws_server import MotoServer

MiB = 1 << 20


def _write_commits(opener: StoreOpener, spec_text: str, commits: int) -> tuple[dict[bytes, bytes], list[bytes]]:
    """The chunks written, and the names of the tables that hold them."""
    spec: StoreSpec = opener.canonical(spec_text)[1]
    store = opener.open(spec, None)
    written = {}
    for _ in range(commits):
        chunks = [os.urandom(4096) for _ in range(16)]  # a 64 KiB table: small enough for a DynamoDB item
        written.update({bytes(store.put(c)): c for c in chunks})
        assert store.commit(store.root(), store.root())
    names = [bytes(s.name) for s in store.upstream.specs]
    store.close()
    return written, names


def test_small_tables_of_every_bucket_share_one_bounded_cache(moto_server: MotoServer, tmp_path: Path) -> None:
    table, first, second = moto_server.create_table(), moto_server.create_bucket(), moto_server.create_bucket()
    config = Config(cache_dir=str(tmp_path / "cache"), aws_stores=["*"], aws=AWSConfig(endpoint=moto_server.endpoint),
                    small_table_cache_size=2 * MiB)
    opener = StoreOpener(config)
    try:
        cache = opener.small_tables
        assert cache is not None
        written, in_first = _write_commits(opener, f"aws://{table}:{first}/a", 8)
        more, in_second = _write_commits(opener, f"aws://{table}:{second}/b", 8)
        written.update(more)
        assert all(cache.get(name) is not None for name in in_first + in_second)  # one cache for both buckets
        more, _ = _write_commits(opener, f"aws://{table}:{first}/c", 24)
        written.update(more)
        assert 0 < cache.total_size <= 2 * MiB  # 40 tables of 64 KiB: evicted down to the budget
        reader = opener.open(opener.canonical(f"aws://{table}:{first}/c")[1], None)
        later = {a: d for a, d in written.items() if reader.has(a)}
        assert len(later) == 24 * 16
        assert reader.get_many(list(later)) == later  # evicted tables are read back from DynamoDB
        reader.close()
    finally:
        opener.close()


def test_a_zero_budget_keeps_no_small_tables(tmp_path: Path) -> None:
    config = Config(cache_dir=str(tmp_path / "cache"), aws_stores=["*"], small_table_cache_size=0)
    assert StoreOpener(config).small_tables is None

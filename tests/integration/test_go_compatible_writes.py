"""What this code writes is laid out exactly as Go Noms lays it out."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from nbs.addr import Addr
from nbs.factory import new_local_store
from nbs.file_manifest import format_manifest, parse_manifest
from nbs.manifest import generate_lock_hash
from nbs.table_index import name_of_suffixes, parse_table_index
from nbs.table_writer import build_table
from tests.helpers import FIXTURES


def test_written_store_files_reparse(tmp_path: Path) -> None:
    store = new_local_store(str(tmp_path), 1 << 12)
    addrs = [store.put(os.urandom(600)) for _ in range(20)]
    assert store.commit(addrs[0], store.root())
    names = sorted(os.listdir(tmp_path))
    assert "LOCK" in names and "manifest" in names
    assert (tmp_path / "LOCK").read_bytes() == b""
    text = (tmp_path / "manifest").read_text()
    contents = parse_manifest(text, "m")
    assert format_manifest(contents) == text and not text.endswith("\n")
    assert text.startswith("4:7.18:")
    assert contents.lock == generate_lock_hash(contents.root, contents.specs)
    assert contents.root == addrs[0]
    tables = sorted(n for n in names if n not in ("LOCK", "manifest"))
    assert tables == sorted(str(s.name) for s in contents.specs)
    seen = set()
    for spec in contents.specs:
        data = (tmp_path / str(spec.name)).read_bytes()
        index = parse_table_index(data, str(spec.name), len(data))
        assert name_of_suffixes(index.suffixes) == spec.name
        assert index.chunk_count == spec.chunk_count
        seen.update(index.addresses())
    assert seen == set(addrs)


def test_table_bytes_identical_to_golden_for_short_chunks(tmp_path: Path) -> None:
    store = new_local_store(str(tmp_path))
    for c in [b"hello2", b"goodbye2", b"badbye2"]:
        store.put(c)
    assert store.commit(Addr.of(b"hello2"), store.root())
    data = (tmp_path / "uog0qvhml7hmloq557j88qfgeptqpo13").read_bytes()
    assert data == build_table((Addr.of(c), c) for c in [b"hello2", b"goodbye2", b"badbye2"]).data
    assert (tmp_path / "manifest").read_text() == (
        "4:7.18:7vr0tp8gqkgthupu2ti24sdu6ob7duoc:h8fh8lbvbq671mj9eo8u4cbofkhmv6kp:uog0qvhml7hmloq557j88qfgeptqpo13:3")


def test_append_to_a_go_written_store(tmp_path: Path) -> None:
    """Commit on top of a copy of a Go store; the old tables stay named, in Go's format."""
    src = FIXTURES / "local-small" / "store"
    dst = tmp_path / "store"
    shutil.copytree(src, dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    facts = json.loads((FIXTURES / "local-small" / "FACTS.json").read_text())
    store = new_local_store(str(dst))
    new = store.put(b"appended by python")
    assert store.commit(new, store.root())
    contents = parse_manifest((dst / "manifest").read_text(), "m")
    names = [str(s.name) for s in contents.specs]
    assert names[1:] == [t["name"] for t in facts["manifest"]["tables"]]  # novel first, then upstream
    reopened = new_local_store(str(dst))
    assert reopened.get(new) == b"appended by python"
    old = [Addr.parse(h) for h in facts["chunk_hashes_sorted"]]
    assert reopened.has_many(old) == set()

"""OS failures under a local store surface as typed ``nbs`` errors naming the path, never as builtins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbs.addr import Addr
from nbs.errors import InvalidStoreNameError, StoreIOError, TableNotFoundError
from nbs.factory import LocalStoreFactory, new_local_store
from nbs.file_manifest import MANIFEST_FILE
from nbs.store import NomsBlockStore
from tests.daemon_harness import ROOT
from tests.os_faults import unprivileged


def committed(directory: Path, *chunks: bytes, max_tables: int = 192) -> tuple[NomsBlockStore, list[Addr]]:
    """A store in ``directory`` with one commit (so one table) per chunk."""
    directory.mkdir(exist_ok=True)
    store = new_local_store(str(directory), max_tables=max_tables)
    addrs = []
    for chunk in chunks:
        addrs.append(store.put(chunk))
        assert store.commit(addrs[-1], store.root())
    return store, addrs


def table_files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if len(p.name) == 32}


def test_missing_table_whose_index_is_cached_is_table_not_found(tmp_path: Path) -> None:
    """The writer left the table's index in the process's index cache: the reader opens no file until it reads."""
    chunk = os.urandom(100)
    _, (h,) = committed(tmp_path, chunk)
    (table,) = table_files(tmp_path)
    os.unlink(tmp_path / table)
    reader = new_local_store(str(tmp_path))
    assert reader.has(h)
    with pytest.raises(TableNotFoundError, match=f"table {table} not found in {tmp_path}"):
        reader.get(h)
    with pytest.raises(TableNotFoundError):
        reader.get_many([h])


@pytest.mark.parametrize("read", ["get", "get_many", "iter_many"])
def test_reader_rebases_when_its_table_was_conjoined_away(tmp_path: Path, read: str) -> None:
    """Another writer conjoined the reader's tables and a collector deleted them: the read finds the chunk anyway."""
    chunks = [os.urandom(100) for _ in range(3)]
    _, addrs = committed(tmp_path / "db", *chunks[:2])
    old_tables = table_files(tmp_path / "db")
    reader = LocalStoreFactory(str(tmp_path), max_open_files=1).create_store("db")  # keeps one table file open
    conjoiner, (newest,) = committed(tmp_path / "db", chunks[2], max_tables=1)
    assert not old_tables & {str(s.name) for s in conjoiner.upstream.specs}
    for name in old_tables:
        os.unlink(tmp_path / "db" / name)
    if read == "get":
        assert [reader.get(a) for a in addrs] == chunks[:2]
    elif read == "get_many":
        assert reader.get_many(addrs) == dict(zip(addrs, chunks[:2]))
    else:
        assert sorted(reader.iter_many(addrs)) == sorted(zip(addrs, chunks[:2]))  # each chunk once
    assert reader.root() == newest


def test_unreadable_manifest_is_a_store_io_error(tmp_path: Path) -> None:
    committed(tmp_path, b"x")
    (tmp_path / MANIFEST_FILE).chmod(0)
    script = ("import nbs, sys\n"
              "try:\n    nbs.new_local_store(sys.argv[1])\n"
              "except nbs.StoreIOError as err:\n    print(err.path, err.errno, err)\n")
    child = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True,
                           text=True, timeout=60, **unprivileged())
    assert child.stderr == ""
    path, errno, message = child.stdout.split(" ", 2)
    assert (path, int(errno)) == (str(tmp_path / MANIFEST_FILE), 13)
    assert message.strip() == f"cannot read manifest {path}: Permission denied"


def test_too_long_store_name_is_an_invalid_store_name(tmp_path: Path) -> None:
    name = "n" * 300  # within the 1024 characters a name may have, beyond the 255 bytes of one file name
    with pytest.raises(InvalidStoreNameError, match=str(tmp_path / name)):
        LocalStoreFactory(str(tmp_path)).create_store(name)


def test_commit_into_a_vanished_directory_is_a_store_io_error(tmp_path: Path) -> None:
    store = new_local_store(str(tmp_path))
    h = store.put(b"orphan")
    tmp_path.rmdir()
    with pytest.raises(StoreIOError, match=f"cannot write table {tmp_path}/") as err:
        store.commit(h, store.root())
    assert err.value.errno == 2

"""Fork safety of nbs's building blocks: a forked child never inherits threads, held locks or connections."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from nbs.addr import Addr
from nbs.factory import new_local_store
from nbs.fd_cache import FDCache
from nbs.file_manifest import FileManifest
from nbs.forksafe import ProcessLocal, Semaphore
from nbs.index_cache import IndexCache
from nbs.io_pool import IOPool
from nbs.manifest import ManifestContents
from nbs.named_locks import NamedLocks
from nbs.persisting_chunk_source import PersistingChunkSource
from nbs.process_client import ProcessClient, process_client
from nbs.stats import Stats
from nbs.table_index import TableIndex, parse_table_index
from nbs.table_writer import build_table
from tests.forking import in_child
from tests.helpers import TEST_CHUNKS, memtable_of
from tests.unit.fakes import GatedPersister


@contextmanager
def held_by_another_thread(acquire: Callable[[], object], release: Callable[[], object]) -> Iterator[None]:
    """``acquire()`` runs in a helper thread, which holds it until the block ends (across a fork in it)."""
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        acquire()
        taken.set()
        done.wait(30)
        release()

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(10)
    try:
        yield
    finally:
        done.set()
        thread.join()


def test_process_local_makes_a_new_value_in_a_child_and_keeps_the_parents() -> None:
    made: list[int] = []

    def make() -> object:
        made.append(os.getpid())
        return object()

    local = ProcessLocal(make)
    parents = local.get()
    assert local.get() is parents
    child_made = in_child(lambda: (local.get() is not parents, made[-1] == os.getpid()))
    assert child_made == (True, True)
    assert local.get() is parents and made == [os.getpid()]


def test_semaphore_slots_held_by_parent_threads_are_free_in_a_child() -> None:
    sem = Semaphore(1)
    with held_by_another_thread(sem.acquire, sem.release):
        assert not sem.acquire(blocking=False)
        assert in_child(lambda: sem.acquire(timeout=5))
    assert sem.acquire(timeout=5)


def test_named_lock_held_by_a_parent_thread_is_free_in_a_child() -> None:
    locks = NamedLocks()
    with held_by_another_thread(lambda: locks.lock("db"), lambda: locks.unlock("db")):
        def lock_and_unlock() -> bool:
            locks.lock("db")
            locks.unlock("db")
            return True

        assert in_child(lock_and_unlock, timeout=10)


def test_index_load_a_parent_thread_was_running_at_fork_is_redone_in_a_child() -> None:
    table = build_table((Addr.of(c), c) for c in TEST_CHUNKS)
    cache = IndexCache(1 << 20)
    loading, release = threading.Event(), threading.Event()

    def load() -> TableIndex:
        return parse_table_index(table.data, "t")

    def parents_load() -> TableIndex:
        loading.set()
        assert release.wait(30)
        return load()

    with ThreadPoolExecutor(1) as pool:
        parents = pool.submit(cache.get_or_load, table.name, parents_load)
        assert loading.wait(10)
        try:
            # Without forgetting the parent's load, the child would wait for it forever.
            child_count = in_child(lambda: cache.get_or_load(table.name, load).chunk_count, timeout=10)
        finally:
            release.set()
        assert parents.result(10).chunk_count == child_count == len(TEST_CHUNKS)


def test_fd_cache_references_of_parent_threads_do_not_pin_files_in_a_child(tmp_path: Path) -> None:
    paths = [tmp_path / f"t{i}" for i in range(3)]
    for p in paths:
        p.write_bytes(b"x")
    cache = FDCache(1)

    def ref_all() -> None:
        for p in paths:
            cache.ref_file(str(p))

    def unref_all() -> None:
        for p in paths:
            cache.unref_file(str(p))

    with held_by_another_thread(ref_all, unref_all):
        def evict() -> int:
            cache.unref_file(str(paths[0]))  # any release trims idle files down to the target
            return len(cache)

        assert in_child(evict) == 1


def test_store_locked_by_a_parent_thread_commits_in_a_child(tmp_path: Path) -> None:
    store = new_local_store(str(tmp_path))
    assert store.commit(store.put(b"before fork"), store.root())
    with held_by_another_thread(store._lock.acquire, store._lock.release):
        def commit() -> str:
            root = store.put(b"in the child")
            assert store.commit(root, store.root())
            return str(root)

        child_root = in_child(commit)
    assert str(new_local_store(str(tmp_path)).root()) == child_root


def test_persist_running_in_the_parent_at_fork_is_redone_in_the_child() -> None:
    persister = GatedPersister()
    source = PersistingChunkSource(memtable_of(TEST_CHUNKS), None, persister, Stats(), Semaphore(1))

    def wait_in_child() -> tuple[int, list[bytes | None]]:
        persister.release.set()  # the child's own persist may run; the parent's thread is not here
        table = source.wait()
        return table.count(), [table.get(Addr.of(c)) for c in TEST_CHUNKS]

    count, chunks = in_child(wait_in_child)
    assert (count, chunks) == (3, TEST_CHUNKS)
    persister.release.set()
    assert source.wait().count() == 3  # the parent's persist finishes as usual


def test_io_pool_used_before_fork_works_in_the_child() -> None:
    pool = IOPool(2)
    assert pool.map(lambda x: x * 2, range(8)) == [x * 2 for x in range(8)]
    time.sleep(0.2)  # let the threads go idle: an inherited executor then never starts threads in the child
    assert in_child(lambda: pool.map(lambda x: x + 1, range(8)), timeout=10) == list(range(1, 9))
    assert pool.map(lambda x: x, range(3)) == [0, 1, 2]
    pool.shutdown()


def test_process_client_is_rebuilt_from_its_recipe_in_a_child() -> None:
    built: list[int] = []

    class Client:
        def __init__(self) -> None:
            built.append(os.getpid())
            self.pid = os.getpid()

        def whoami(self) -> int:
            return self.pid

    client: Any = ProcessClient(Client)
    assert client.whoami() == os.getpid()
    assert in_child(lambda: (client.whoami() == os.getpid(), len(built))) == (True, 2)
    assert client.whoami() == os.getpid() and built == [os.getpid()]


def test_a_callers_client_drops_its_inherited_connections_in_a_child() -> None:
    class HTTPSession:
        closed_in: list[int] = []

        def close(self) -> None:
            self.closed_in.append(os.getpid())

    class Endpoint:
        http_session = HTTPSession()

    class CallerClient:
        _endpoint = Endpoint()

        def ping(self) -> str:
            return "pong"

    client: Any = process_client(CallerClient())
    assert process_client(client) is client  # wrapped once
    assert in_child(lambda: (client.ping(), HTTPSession.closed_in == [os.getpid()])) == ("pong", True)
    assert HTTPSession.closed_in == []  # the parent's connections were never touched


def test_a_process_client_needs_something_to_forward_to() -> None:
    with pytest.raises(ValueError):
        ProcessClient()


def test_manifest_lock_is_released_even_when_a_child_holds_a_copy_of_its_descriptor(tmp_path: Path) -> None:
    """A fork while a thread holds the manifest's flock must not extend the lock to the child's lifetime."""
    manifest = FileManifest(str(tmp_path))
    in_update, forked = threading.Event(), threading.Event()

    def hook() -> None:
        in_update.set()
        assert forked.wait(10)

    def update() -> None:
        manifest.update(Addr(bytes(20)), ManifestContents.for_commit(Addr.of(b"r"), []), Stats(), hook)

    updater = threading.Thread(target=update)
    updater.start()
    assert in_update.wait(10)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(write_end)
        os.read(read_end, 1)  # alive, holding the inherited descriptor, until the parent has checked
        os._exit(0)
    os.close(read_end)
    try:
        forked.set()
        updater.join()
        probe = os.open(tmp_path / "LOCK", os.O_RDONLY)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError if still held
        finally:
            os.close(probe)
    finally:
        os.write(write_end, b"x")
        os.close(write_end)
        os.waitpid(pid, 0)

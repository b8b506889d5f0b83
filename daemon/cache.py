"""The daemon's on-disk chunk cache: one LMDB environment, nbsd its only writer.

Layout: database ``chunks`` (address -> cache record, see nbsclient.cache_record),
``fifo`` (insertion sequence -> address) and ``meta`` (byte total, next
sequence, cache id).  Eviction is FIFO by first insertion: when the estimated
on-disk size passes the budget, the oldest entries go first.  Clients read
the same environment read-only, so hits they serve themselves are invisible
here; FIFO needs no recency information, which is why it was chosen.

The map size is fixed for the life of the process (budget + 25% + 64 MiB):
read-only clients opened with that size never see MapResizedError.  Writes
use ``sync=False`` with a periodic ``sync()``; a crash of the daemon loses
nothing already committed to the page cache, and a damaged environment is
moved aside and recreated at start.

Once open, the cache never fails a request: an LMDB error while reading or
filling it (a full disk, a full map, an I/O error, a full reader table) makes
reads miss and fills skip, and ``health`` reports the cache degraded until
it works again (see nbsclient.cache_health).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass
from typing import TypeVar

import lmdb

from nbsclient import cache_record
from nbsclient.cache_health import READ, WRITE, CacheHealth
from nbsd.counts import Counts

log = logging.getLogger(__name__)

PAGE = 4096
MAX_INLINE_NODE = 2000
MAX_READERS = 1024
MAX_DBS = 4
_BYTES = b"bytes"
_SEQ = b"seq"
_ID = b"id"
T = TypeVar("T")
Holders = Callable[[list[bytes]], Mapping[bytes, bytes]]


def stored_size(value_len: int) -> int:
    """Estimated bytes a record occupies in LMDB (values over ~2 KB take whole overflow pages)."""
    if value_len + 20 < MAX_INLINE_NODE:
        return value_len + 28
    return -(-(value_len + 16) // PAGE) * PAGE


def map_size_for(budget: int) -> int:
    return budget + budget // 4 + (64 << 20)


@dataclass
class CacheInfo:
    """What a client needs to open the environment read-only."""

    path: str
    map_size: int
    max_readers: int
    cache_id: str


@dataclass
class CacheCounters(Counts):
    hits: int = 0
    misses: int = 0
    inserts: int = 0
    evictions: int = 0
    corrupt: int = 0
    hidden: int = 0  # present, but the asking store holds the chunk in none of the entry's tables
    rehomed: int = 0  # present under tables the store no longer names (conjoined), served and re-tagged
    client_hits: int = 0  # served by clients from the cache themselves, as they report it
    client_misses: int = 0  # what clients report they missed (and then asked the daemon for)

    def count_lookups(self, hits: int, misses: int = 0, hidden: int = 0) -> None:
        """``add`` for every read, without its keyword dict and look-ups by name: a cached chunk's inline get
        takes about 3 us of the daemon's thread in all, and ``add`` made it 1.5 us longer."""
        with self._lock:
            self.hits += hits
            self.misses += misses
            self.hidden += hidden


class ChunkCache:
    def __init__(self, path: str, budget: int, shared: bool = True) -> None:
        """``shared``: the daemon's group may read the cache (the clients' fast path); else it is private."""
        self.path = path
        self.budget = budget
        self.shared = shared
        self.map_size = map_size_for(budget)
        self.counters = CacheCounters()
        self.health = CacheHealth(log, f"chunk cache {path}")
        self._write_lock = threading.Lock()
        self._total_bytes = self._entries = 0  # the last figures read, reported while reads fail
        self.env = self._open()
        self._chunks = self.env.open_db(b"chunks")
        self._fifo = self.env.open_db(b"fifo")
        self._meta = self.env.open_db(b"meta")
        with self.env.begin(write=True) as txn:
            cache_id = txn.get(_ID, db=self._meta)
            if cache_id is None:
                cache_id = uuid.uuid4().hex.encode()
                txn.put(_ID, cache_id, db=self._meta)
        self.cache_id = cache_id.decode()
        self._set_permissions()
        cleared = self.env.reader_check()
        if cleared:
            log.info("cleared %d stale LMDB reader slots", cleared)
        self._shrink_to_budget()
        self._reserve_reader_table()
        self._warn_if_disk_is_smaller()

    def _reserve_reader_table(self) -> None:
        """Give the reader table its disk blocks now, while there is room.

        LMDB keeps reader slots in ``lock.mdb``, a sparse file written through
        a memory map: a process taking a slot on a page the file system cannot
        allocate (a full disk) dies of SIGBUS instead of getting an error.
        """
        path = os.path.join(self.path, "lock.mdb")
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        except OSError as err:
            log.warning("cannot reserve disk space for the LMDB reader table %s (%s): if the disk fills, "
                        "a process taking a new reader slot may crash", path, err.strerror)
        finally:
            os.close(fd)

    def _warn_if_disk_is_smaller(self) -> None:
        """A budget the file system cannot hold degrades the cache once the disk fills: say so at start."""
        fs = os.statvfs(self.path)
        held = os.stat(os.path.join(self.path, "data.mdb")).st_blocks * 512
        room = fs.f_bavail * fs.f_frsize + held
        if self.budget > room:
            log.warning("cache_size %d bytes exceeds the %d bytes free for the cache on the file system of %s: "
                        "once that fills, the cache degrades and reads are served from the stores",
                        self.budget, room, self.path)

    def _open(self) -> lmdb.Environment:
        os.makedirs(self.path, mode=0o750, exist_ok=True)
        try:
            return self._open_env()
        except lmdb.Error as err:
            aside = f"{self.path}.broken-{int(time.time())}"
            log.error("cache at %s cannot be opened (%s); moving it to %s and starting empty", self.path, err, aside)
            shutil.move(self.path, aside)
            os.makedirs(self.path, mode=0o750, exist_ok=True)
            return self._open_env()

    def _open_env(self) -> lmdb.Environment:
        return lmdb.open(self.path, map_size=self.map_size, max_dbs=MAX_DBS, max_readers=MAX_READERS,
                         sync=False, metasync=False, readahead=False, meminit=False)

    def _set_permissions(self) -> None:
        """Group members may read the data and register as readers in the lock file, if the cache is shared."""
        dir_mode, data_mode, lock_mode = (0o750, 0o640, 0o660) if self.shared else (0o700, 0o600, 0o600)
        os.chmod(self.path, dir_mode)
        os.chmod(os.path.join(self.path, "data.mdb"), data_mode)
        os.chmod(os.path.join(self.path, "lock.mdb"), lock_mode)

    @property
    def info(self) -> CacheInfo:
        return CacheInfo(self.path, self.map_size, MAX_READERS, self.cache_id)

    # -- reads -------------------------------------------------------------------------------

    def get_many(self, addrs: Iterable[bytes], view: Set[bytes], found: dict[bytes, bytes],
                 tally: bool = True, holders: Holders | None = None) -> list[bytes]:
        """Serve visible, intact entries into ``found``; return the rest (corrupt entries are dropped).

        ``tally`` counts the lookups in the hit/miss figures; repeat lookups of one request pass False.
        ``holders`` re-homes entries hidden from ``view``: a conjoin replaced the tables they were
        cached from, so they name none of the store's tables.  Given their addresses, it names a table
        of the store that holds each (from the store's index, no chunk read); such entries are served
        and tagged with that table, so the next read, the clients' fast path included, finds them.
        Entries of chunks the store does not hold stay hidden.
        """
        addrs = list(addrs)
        missing: list[bytes] = []
        corrupt: list[bytes] = []
        hidden: dict[bytes, bytes] = {}
        still_hidden = 0  # entries hidden from ``view`` and not re-homed
        if not self.health.usable(READ):
            return addrs
        try:
            with self.env.begin(db=self._chunks, buffers=True) as txn:
                for a in addrs:
                    value = txn.get(a)
                    if value is None:
                        missing.append(a)
                        continue
                    try:
                        chunk = cache_record.visible_chunk(a, value, view)
                    except cache_record.CorruptRecordError:
                        corrupt.append(a)
                        missing.append(a)
                        continue
                    if chunk is not None:
                        found[a] = chunk
                    elif holders is not None:
                        hidden[a] = cache_record.chunk_of(value)
                    else:
                        still_hidden += 1
                        missing.append(a)
        except lmdb.Error as err:
            self.health.failed(READ, err)
            return [a for a in addrs if a not in found]
        self.health.succeeded(READ)
        if hidden:
            assert holders is not None
            unhomed = self._rehome(hidden, holders(list(hidden)), found)
            still_hidden += len(unhomed)
            missing.extend(unhomed)
        if tally:
            self.counters.count_lookups(len(found), len(missing), still_hidden)
        if corrupt:
            self.drop_corrupt(corrupt)
        return missing

    def _rehome(self, hidden: dict[bytes, bytes], homes: Mapping[bytes, bytes],
                found: dict[bytes, bytes]) -> list[bytes]:
        """Serve and re-tag the hidden entries that ``homes`` places in a table; return the others."""
        moved = [(a, chunk, bytes(homes[a])) for a, chunk in hidden.items() if a in homes]
        if moved:
            found.update((a, chunk) for a, chunk, _ in moved)
            self.put_many(moved)
            self.counters.add(rehomed=len(moved))
        return [a for a in hidden if a not in homes]

    def peek(self, addr: bytes, view: Set[bytes], prefix: bytes = b"") -> bytes | None:
        """``prefix`` + the chunk if cached, intact and visible to ``view``; else None.

        The hot path of a single read: it counts and drops nothing, so a caller
        that gets None looks again with ``get_many``, which does both.  A reply
        header passed as ``prefix`` is joined to the chunk in the same copy.
        """
        if not self.health.usable(READ):
            return None
        try:
            txn = self.env.begin(db=self._chunks, buffers=True)
            try:
                value = txn.get(addr)
                reply = None if value is None else cache_record.visible_chunk(addr, value, view, prefix)
            finally:
                txn.abort()
        except cache_record.CorruptRecordError:
            return None
        except lmdb.Error as err:
            self.health.failed(READ, err)
            return None
        self.health.succeeded(READ)
        return reply

    def drop_corrupt(self, addrs: Iterable[bytes]) -> None:
        """Delete entries found damaged so they are fetched again."""
        addrs = list(addrs)
        log.warning("dropping %d corrupt cache entries", len(addrs))
        self.counters.add(corrupt=len(addrs))
        self._write(self._drop, addrs)

    def _drop(self, addrs: list[bytes]) -> None:
        with self.env.begin(write=True) as txn:
            freed = 0
            for a in addrs:
                value = txn.get(a, db=self._chunks)
                if value is None:
                    continue
                txn.delete(a, db=self._chunks)
                self._forget_fifo(txn, a, value)
                freed += stored_size(len(value))
            self._add_bytes(txn, -freed)

    # -- writes ------------------------------------------------------------------------------

    def put_many(self, items: Iterable[tuple[bytes, bytes, bytes]]) -> None:
        """Insert ``(address, chunk, table)`` triples, or add ``table`` to an existing entry."""
        items = list(items)
        if items:
            self._write(self._put_or_evict, items)

    def _write(self, write: Callable[[T], object], arg: T) -> None:
        """Run a write transaction unless writes are failing; an LMDB error degrades the cache instead of raising."""
        if not self.health.usable(WRITE):
            return
        try:
            with self._write_lock:
                write(arg)
        except lmdb.Error as err:
            self.health.failed(WRITE, err)
        else:
            self.health.succeeded(WRITE)

    def _put_or_evict(self, items: list[tuple[bytes, bytes, bytes]]) -> None:
        try:
            self._put_many(items)
        except lmdb.MapFullError:
            log.warning("cache map full; evicting a tenth of the budget and retrying")
            self._evict(self.budget // 10)
            self._put_many(items)

    def _put_many(self, items: list[tuple[bytes, bytes, bytes]]) -> None:
        inserted = 0
        with self.env.begin(write=True) as txn:
            seq = int.from_bytes(txn.get(_SEQ, default=bytes(8), db=self._meta), "big")
            delta = 0
            for addr, chunk, table in items:
                old = txn.get(addr, db=self._chunks)
                if old is not None:
                    try:
                        n = cache_record.verify(addr, old)
                    except cache_record.CorruptRecordError:
                        n = -1
                    if n >= 0:
                        tables = cache_record.tables_of(old, n)
                        if table in tables:
                            continue
                        tables = [table, *tables][:cache_record.MAX_TABLES]
                        value = cache_record.encode(addr, cache_record.seq_of(old), tables, chunk)
                        txn.put(addr, value, db=self._chunks)
                        delta += stored_size(len(value)) - stored_size(len(old))
                        continue
                    self._forget_fifo(txn, addr, old)
                    delta -= stored_size(len(old))
                value = cache_record.encode(addr, seq, [table], chunk)
                txn.put(addr, value, db=self._chunks)
                txn.put(seq.to_bytes(8, "big"), addr, db=self._fifo)
                seq += 1
                delta += stored_size(len(value))
                inserted += 1
            txn.put(_SEQ, seq.to_bytes(8, "big"), db=self._meta)
            total = self._add_bytes(txn, delta)
            if total > self.budget:
                self._evict_in(txn, total - self.budget)
        self.counters.add(inserts=inserted)

    def _forget_fifo(self, txn: lmdb.Transaction, addr: bytes, value: bytes) -> None:
        """Remove ``addr``'s eviction-order entry; a damaged value's sequence is trusted only if it points back."""
        if len(value) < cache_record.HEADER:
            return
        key = cache_record.seq_of(value).to_bytes(8, "big")
        if txn.get(key, db=self._fifo) == bytes(addr):
            txn.delete(key, db=self._fifo)

    def _add_bytes(self, txn: lmdb.Transaction, delta: int) -> int:
        total = max(0, int.from_bytes(txn.get(_BYTES, default=bytes(8), db=self._meta), "big") + delta)
        txn.put(_BYTES, total.to_bytes(8, "big"), db=self._meta)
        return total

    def _evict_in(self, txn: lmdb.Transaction, amount: int) -> None:
        freed = evicted = 0
        with txn.cursor(db=self._fifo) as cursor:
            while freed < amount and cursor.first():
                addr = cursor.value()
                cursor.delete()
                value = txn.get(addr, db=self._chunks)
                if value is not None:
                    txn.delete(addr, db=self._chunks)
                    freed += stored_size(len(value))
                    evicted += 1
        self._add_bytes(txn, -freed)
        self.counters.add(evictions=evicted)

    def _evict(self, amount: int) -> None:
        with self.env.begin(write=True) as txn:
            self._evict_in(txn, amount)

    def set_budget(self, budget: int) -> None:
        """A new budget while running: a smaller one evicts at once; the map keeps the size it had at start."""
        self.budget = budget
        self._shrink_to_budget()
        if budget > self.map_size - map_size_for(0):
            log.warning("cache_size %d bytes is more than the cache's memory map (sized at start) holds: the "
                        "cache fills to about %d bytes until a restart", budget, self.map_size - map_size_for(0))

    def _shrink_to_budget(self) -> None:
        """A smaller budget than last run takes effect at start."""
        total = self.total_bytes()
        if total > self.budget:
            self._write(self._evict, total - self.budget)

    # -- housekeeping ------------------------------------------------------------------------

    def total_bytes(self) -> int:
        """Estimated bytes cached (the last figure read, while reads fail)."""
        try:
            with self.env.begin(db=self._meta) as txn:
                self._total_bytes = int.from_bytes(txn.get(_BYTES, default=bytes(8)), "big")
        except lmdb.Error as err:
            self.health.failed(READ, err)
        return self._total_bytes

    def entries(self) -> int:
        """Chunks cached (the last figure read, while reads fail)."""
        try:
            with self.env.begin() as txn:
                self._entries = int(txn.stat(self._chunks)["entries"])
        except lmdb.Error as err:
            self.health.failed(READ, err)
        return self._entries

    def maintenance(self) -> int:
        """Flush to disk and clear reader slots of dead processes; returns slots cleared."""
        try:
            self.env.sync(True)
        except lmdb.Error as err:
            self.health.failed(WRITE, err)
        try:
            return int(self.env.reader_check())
        except lmdb.Error as err:
            self.health.failed(READ, err)
            return 0

    def close(self) -> None:
        try:
            self.env.sync(True)
        except lmdb.Error as err:
            log.warning("chunk cache %s: final sync failed (%s); unsynced entries may be lost", self.path, err)
        self.env.close()

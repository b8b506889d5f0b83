"""``DaemonStore``: the chunk-store API of ``nbs``, served by nbsd.

Writes go to the daemon as chunks, in parts of a table upload: the daemon
hashes and encodes them on its chunk workers (so every address is its own
computation, and this process does no per-chunk work) and stores them while
the next part travels.  ``put_many`` sends its chunks at once and returns the
addresses the daemon answers; ``put`` hashes its chunk here and sends it with
the next part or at the table's end.  A local memtable keeps the chunks of the
table until it ends (at ``memtable_size`` bytes, or on commit), for reads and
to send them again if the daemon loses the upload.  A memtable that fills in
the middle of a write ends in the background (its ``table_end``: the daemon's
index build and fsync) while the next one fills, as a direct store persists
a full memtable.  Reads look in the memtables, then in the daemon's cache
directly (read-only LMDB), then ask the daemon.  The client remembers its
view (manifest contents and pending tables) so that after a daemon restart it
reopens its session exactly where it was, and a commit that landed before a
lost reply is still reported landed.  A forked child reopens a session of its
own the same way, on first use: the parent's session, sockets and cache
handle stay the parent's.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from nbs.addr import Addr, compute_addr
from nbs.chunk_store import ITER_BATCH, iter_in_batches
from nbs.chunk_workers import runs
from nbs.errors import SpecError, StoreClosedError, UploadError
from nbs.forksafe import register
from nbs.manifest import ManifestContents, TableSpec
from nbs.mem_table import MemTable, check_chunk, check_chunks
from nbs.spec import StoreSpec, local_path, parse_store_spec
from nbs.stats import Stats
from nbsclient import protocol as p
from nbsclient.connection import BUSY_RETRIES, Backoff, Connection
from nbsclient.curve import ClientKeys
from nbsclient.fast_cache import ReadOnlyCache
from nbsclient.part_memory import TOKEN_SIZE, PartMemory, PartMemoryUnavailable, parts_socket

DEFAULT_MEMTABLE_SIZE = 64 << 20
PART_BYTES = 2 << 20  # chunks per table_chunks part: the daemon hashes and stores one while the next travels
PARTS_IN_FLIGHT = 4
UPLOAD_RETRIES = 2  # at least this many resends of a whole table, whatever ``retries`` says
REPORT_EVERY_S = 5.0
HAND_OVER_WAIT_S = 5.0
T = TypeVar("T")
log = logging.getLogger("nbsclient")


class _OpenTable:
    """The memtable filling and the daemon's upload of its table: how far it is sent, to go on or start again."""

    __slots__ = ("memtable", "upload", "seq", "sent")

    def __init__(self, memtable: MemTable) -> None:
        self.memtable = memtable
        self.upload: int | None = None  # the daemon's upload, once begun
        self.seq = 0  # the upload's next part number
        self.sent = 0  # the memtable's chunks (in insertion order) already in the upload

    def restart(self) -> None:
        """Forget the upload (the daemon lost it, or this is a forked child): every chunk goes in a new one."""
        self.upload, self.sent = None, 0


def _in_background(fn: Callable[[], T]) -> Future[T]:
    """``fn()`` on a daemon thread of its own (with a socket of its own): a process that exits does not wait
    for a table end, whose table would be dropped uncommitted anyway, however long the daemon takes."""
    done: Future[T] = Future()

    def run() -> None:
        try:
            done.set_result(fn())
        except BaseException as err:  # noqa: BLE001 - delivered to whoever takes the result
            done.set_exception(err)

    threading.Thread(target=run, name="nbsclient-table-end", daemon=True).start()
    return done


class _EndingTable:
    """A full table whose ``table_end`` runs in the background; its memtable is read until it has ended.

    ``end`` (the table's spec and when it came) is None in a forked child, where the parent's request cannot
    finish: the table goes again."""

    __slots__ = ("table", "end", "started")

    def __init__(self, table: _OpenTable, end: Future[tuple[TableSpec, int]] | None, started: int) -> None:
        self.table, self.end, self.started = table, end, started


def _reply_addrs(reply: Any) -> list[Addr]:
    """The addresses a ``table_chunks`` reply holds, made while later parts are still in the daemon."""
    return p.decode_packed_addrs(p.reply_field(reply, "addrs", bytes, p.TABLE_CHUNKS))


def _batches(items: Sequence[bytes], size: int = p.MAX_ADDRS_PER_REQUEST) -> Iterator[Sequence[bytes]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def absolute_spec(spec: str) -> str:
    """``spec`` with a local store's path made absolute against this process's working directory.

    The daemon runs elsewhere: a relative path would be resolved in its directory, not the caller's.
    Specs the client cannot parse go as they are, for the daemon to refuse with its reason.
    """
    try:
        parsed = parse_store_spec(spec)
    except SpecError:
        return spec
    if parsed.protocol != "nbs" or local_path(parsed) == parsed.path:
        return spec
    return str(StoreSpec("nbs", path=local_path(parsed), options=parsed.options))


class DaemonStore:
    def __init__(self, spec: str, endpoint: str | None = None, *, memtable_size: int = DEFAULT_MEMTABLE_SIZE,
                 timeout: float = 30.0, commit_timeout: float = 300.0, retries: int = 3,
                 fast_path: bool = True, curve_keys: ClientKeys | None = None,
                 connect_timeout: float | None = None, part_memory: bool = True) -> None:
        """``timeout``/``retries``: each request's wait and resends; ``connect_timeout``: the most the first
        contact may take before a typed error says why (default ``$NBSD_CONNECT_TIMEOUT``, else 5 s);
        ``part_memory``: whether parts may go in shared memory where the daemon offers it."""
        self.spec = absolute_spec(spec)
        self._conn = Connection(endpoint, timeout, retries, curve_keys, connect_timeout)
        self._commit_timeout = commit_timeout
        self._fast_path = fast_path
        self._use_part_memory = part_memory
        self._memtable_size = memtable_size
        self._lock = threading.RLock()
        self._stats = Stats()
        self._cache: ReadOnlyCache | None = None
        self._table: _OpenTable | None = None
        self._ending: _EndingTable | None = None  # at most one table ends in the background
        self._novel: list[TableSpec] = []
        self._contents: ManifestContents | None = None
        self._view: frozenset[bytes] = frozenset()
        self._handle: int | None = None
        self._parts_socket: str | None = None  # where part memory is handed over (None: parts go through ZeroMQ)
        self._parts_token: bytes | None = None  # this session's, to hand part memory over
        self._parts: PartMemory | None = None
        self._parts_handed_to: int | None = None  # the session the part memory was handed to
        self._closed = False
        self._last_report = time.monotonic()
        self._connect(first=True)
        register(self)

    def after_fork_in_child(self) -> None:
        self._lock = threading.RLock()
        self._handle = None  # the parent's session: ours is opened on first use
        for table in (self._table, self._ending.table if self._ending is not None else None):
            if table is not None:  # the parent's uploads too: the memtables go again in ours
                table.restart()
        if self._ending is not None:
            self._ending.end = None
        self._cache = None
        if self._parts is not None:  # the parent's, shared with it: this process makes its own
            self._parts.close()
        self._parts = self._parts_handed_to = None

    # -- session management -----------------------------------------------------------------

    def _connect(self, first: bool = False) -> None:
        """Greet the daemon and open (or reopen, after a restart) this store's session.

        The ``first`` greeting fails fast (no daemon, no permission, no answer); a reopen waits and
        retries like any request, since the daemon answered before and is likely restarting.
        """
        hello = self._conn.hello() if first else self._conn.request(p.HELLO, {})
        self._conn.max_message = p.reply_field(hello, "max_message", int, p.HELLO, p.DEFAULT_MAX_MESSAGE)
        self._conn.attachments = bool(hello.get("attachments"))
        offered = p.optional_field(hello, "parts_socket", str, p.HELLO) is not None
        self._parts_socket = parts_socket(self._conn.endpoint) if offered and self._use_part_memory else None
        if self._fast_path:
            self._cache = ReadOnlyCache.try_open(hello.get("cache"))
        body: dict[str, Any] = {"spec": self.spec, "novel": p.encode_specs(self._novel)}
        if self._contents is not None:
            body["contents"] = p.encode_contents(self._contents)
        reply = self._conn.request(p.OPEN, body)
        self._handle = p.reply_field(reply, "handle", int, p.OPEN)
        self._parts_token = p.optional_field(reply, "parts_token", bytes, p.OPEN)
        if self._parts_token is not None and len(self._parts_token) != TOKEN_SIZE:
            raise p.ProtocolError(f"the daemon's open reply has a parts_token of {len(self._parts_token)} bytes")
        self._set_contents(p.decode_contents(p.reply_field(reply, "contents", dict, p.OPEN)))

    def _set_contents(self, contents: ManifestContents) -> None:
        self._contents = contents
        self._view = frozenset(bytes(s.name) for s in (*contents.specs, *self._novel))

    def _call(self, op: str, body: dict[str, Any], timeout: float | None = None) -> Any:
        """A session request's reply."""
        return self._in_session(lambda handle: self._conn.request(op, {**body, "handle": handle}, timeout))

    def _in_session(self, send: Callable[[int], T]) -> T:
        """``send(handle)``'s result; an unknown session (the daemon restarted) is reopened once."""
        if self._closed:
            raise StoreClosedError(f"store {self.spec} is closed")
        if self._handle is None:  # forked: open this process's session once
            with self._lock:
                if self._handle is None:
                    self._connect()
        if self._cache is not None and time.monotonic() - self._last_report > REPORT_EVERY_S:
            self._send_report()
        reopened = False
        while True:
            try:
                assert self._handle is not None
                return send(self._handle)
            except p.UnknownSessionError:
                if reopened:
                    raise
                reopened = True
                self._connect()

    def _send_report(self) -> None:
        self._last_report = time.monotonic()
        if self._cache is not None:
            report = self._cache.take_report()
            if report["hits"] or report["misses"] or report["corrupt"]:
                self._conn.request(p.REPORT, report)

    def _snapshot(self) -> tuple[list[MemTable], frozenset[bytes]]:
        """The memtables (filling, then ending) and view to read with.

        No lock: each is replaced whole, never changed in place.  A table that
        starts to end is set ending before it stops filling, and stops ending
        once the daemon has it; read in that order, every chunk is in one of
        them or the daemon's.
        """
        if self._closed:
            raise StoreClosedError(f"store {self.spec} is closed")
        table, ending = self._table, self._ending
        held = [t.memtable for t in (table, ending.table if ending is not None else None) if t is not None]
        return held, self._view

    # -- reads -----------------------------------------------------------------------------------

    def get(self, addr: bytes) -> bytes | None:
        started = time.perf_counter_ns()
        memtables, view = self._snapshot()
        chunk = None
        for memtable in memtables:
            chunk = memtable.get(addr)
            if chunk is not None:
                break
        if chunk is None and self._cache is not None:
            chunk = self._cache.get(addr, view)
        if chunk is None:
            chunk = self._in_session(lambda handle: self._conn.get_one(handle, bytes(addr)))
        self._stats.get_latency.sample_time(started)
        self._stats.chunks_per_get.sample(1)
        return chunk

    def get_many(self, addrs: Iterable[bytes]) -> dict[bytes, bytes]:
        started = time.perf_counter_ns()
        wanted = list(addrs)
        memtables, view = self._snapshot()
        found: dict[bytes, bytes] = {}
        remaining = wanted
        for memtable in memtables:
            remaining = memtable.get_many(remaining, found)
        if remaining and self._cache is not None:
            remaining = self._cache.get_many(remaining, view, found)
        for batch in _batches(remaining):
            served = p.decode_found(self._call(p.GET, {"addrs": [bytes(a) for a in batch]}))
            for a in batch:
                chunk = served.get(a)
                if chunk is not None:
                    found[a] = chunk
        if wanted:
            self._stats.get_latency.sample_time(started)
            self._stats.chunks_per_get.sample(len(wanted))
        return found

    def iter_many(self, addrs: Iterable[bytes], batch: int = ITER_BATCH) -> Iterator[tuple[bytes, bytes]]:
        return iter_in_batches(self.get_many, addrs, batch)

    def has(self, addr: bytes) -> bool:
        return not self.has_many((addr,))

    def has_many(self, addrs: Iterable[bytes]) -> set[bytes]:
        started = time.perf_counter_ns()
        wanted = list(addrs)
        memtables, view = self._snapshot()
        remaining = wanted
        for memtable in memtables:
            remaining = memtable.has_many(remaining)
        if remaining and self._cache is not None:
            present: dict[bytes, bytes] = {}
            remaining = self._cache.get_many(remaining, view, present)
        absent: set[bytes] = set()
        for batch in _batches(remaining):
            told = set(p.decode_addrs(p.reply_field(self._call(p.HAS, {"addrs": [bytes(a) for a in batch]}),
                                                    "absent", list, p.HAS)))
            absent.update(a for a in batch if a in told)
        if wanted:
            self._stats.has_latency.sample_time(started)
            self._stats.addresses_per_has.sample(len(wanted))
        return absent

    def count(self) -> int:
        with self._lock:
            self._join_ending()  # an ended table counts in the daemon, an ending one nowhere else
            memtables = self._snapshot()[0]
            return p.reply_field(self._call(p.COUNT, {}), "count", int, p.COUNT) + sum(m.count() for m in memtables)

    def root(self) -> Addr:
        with self._lock:
            assert self._contents is not None
            return self._contents.root

    def version(self) -> str:
        with self._lock:
            assert self._contents is not None
            return self._contents.vers

    def stats(self) -> Stats:
        return self._stats.copy()

    # -- writes ----------------------------------------------------------------------------------

    def put(self, data: bytes) -> Addr:
        started = time.perf_counter_ns()
        check_chunk(data, self._memtable_size)
        addr = compute_addr(data)
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"store {self.spec} is closed")
            table = self._table or self._open_table()
            if not table.memtable.add_chunk(addr, data):
                self._flush(background=True)
                (self._table or self._open_table()).memtable.add_chunk(addr, data)
        self._stats.put_latency.sample_time(started)
        return Addr(addr)

    def put_many(self, chunks: Iterable[bytes]) -> list[Addr]:
        """``[put(c) for c in chunks]``, sent to the daemon at once: it hashes and encodes them on its chunk
        workers and answers their addresses, so this process does no per-chunk work.  Nothing is put if any
        chunk is refused."""
        started = time.perf_counter_ns()
        items = list(chunks)
        sizes = check_chunks(items, self._memtable_size)
        addrs: list[Addr] = []
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"store {self.spec} is closed")
            done = 0
            while done < len(items):
                table = self._table or self._open_table()
                end = table.memtable.room(sizes, done)
                if end == done:  # full: its table ends, a new memtable takes the rest
                    self._flush(background=True)
                    continue
                batch = items[done:end]
                batch_addrs = self._with_upload(table, functools.partial(self._send_chunks, table=table, batch=batch))
                table.memtable.add_chunks(batch_addrs, batch, 0)
                table.sent = table.memtable.count()
                addrs.extend(batch_addrs)
                done = end
        self._stats.put_latency.sample_time(started)
        return addrs

    def _open_table(self) -> _OpenTable:
        table = self._table = _OpenTable(MemTable(self._memtable_size))
        return table

    def _flush(self, background: bool = False) -> None:
        """End the open table (caller holds the lock): its unsent chunks go, then ``table_end``; the daemon
        persists the chunks it did not hold already, as a pending table.

        In the ``background`` (a memtable full in the middle of a write) the
        next table's upload is begun first (the daemon answers that at once,
        not behind the end's work), then only ``table_end`` waits, on a thread
        of its own, while the next memtable fills: one table ends at a time, and
        the next end, a commit or ``count`` waits for it first.
        """
        self._join_ending()
        table = self._table
        if table is None or table.memtable.count() == 0:
            return
        started = time.perf_counter_ns()
        if background:
            self._with_upload(table, functools.partial(self._send_rest, table=table))
            following = _OpenTable(MemTable(self._memtable_size))
            following.upload = self._in_session(self._begin_upload)
            assert self._handle is not None  # the session the begin just went to
            end = functools.partial(self._end_in_background, self._handle, table.upload)
            self._ending = _EndingTable(table, _in_background(end), started)
            self._table = following
            return
        spec = self._with_upload(table, functools.partial(self._end_table, table=table))
        self._table_ended(table, spec, started, time.perf_counter_ns())
        self._table = None

    def _begin_upload(self, handle: int) -> int:
        return p.reply_field(self._conn.request(p.TABLE_BEGIN, {"handle": handle}), "upload", int, p.TABLE_BEGIN)

    def _end_in_background(self, handle: int, upload: int | None) -> tuple[TableSpec, int]:
        """``table_end`` on a thread of its own: the table's spec, and when it came."""
        return self._request_end(handle, upload), time.perf_counter_ns()

    def _join_ending(self) -> None:
        """Wait for the table ending in the background (caller holds the lock).  If its end failed (the daemon
        restarted, lost the upload, or this is a forked child), the table goes again, as any failed end does."""
        ending = self._ending
        if ending is None:
            return
        table = ending.table
        try:
            if ending.end is None:
                raise UploadError("the table was ending in the parent process")
            spec, ended = ending.end.result()
        except Exception:  # noqa: BLE001 - the sure path decides: it ends the table again, or raises its error
            table.restart()
            spec = self._with_upload(table, functools.partial(self._end_table, table=table))
            ended = time.perf_counter_ns()
        self._table_ended(table, spec, ending.started, ended)
        self._ending = None

    def _table_ended(self, table: _OpenTable, spec: TableSpec, started: int, ended: int) -> None:
        if spec.chunk_count:
            self._novel.insert(0, spec)
            self._view = self._view | {bytes(spec.name)}
            self._stats.bytes_per_persist.sample(table.memtable.uncompressed_len())
            self._stats.chunks_per_persist.sample(spec.chunk_count)
            self._stats.persist_latency.sample(max(ended - started, 1))

    def _with_upload(self, table: _OpenTable, send: Callable[[int, int], T]) -> T:
        """``send(handle, window)`` on ``table``'s upload (caller holds the lock).

        An upload the daemon lost (it restarted, or a part failed or lost its
        reply) begins again with every chunk of the memtable, as often as a
        request would be resent (``retries``): the memtable keeps its chunks
        until their table has ended.  A daemon that says it is busy (too many
        requests in flight, or its memory for uploads full) gets the table
        again after a pause (``Backoff``), as often as a busy request is
        retried, a part at a time.
        """
        window = PARTS_IN_FLIGHT
        attempt = 1
        busy = 0
        backoff = Backoff()
        while True:
            def send_once(handle: int, window: int = window) -> T:
                return send(handle, window)

            try:
                return self._in_session(send_once)
            except p.DaemonBusyError:
                if busy >= BUSY_RETRIES:
                    raise
                busy += 1
                table.restart()
                window = 1
                backoff.wait()
            except (p.DaemonUnavailableError, UploadError):
                if attempt > max(UPLOAD_RETRIES, self._conn.retries):
                    raise
                attempt += 1
                table.restart()

    def _send_chunks(self, handle: int, window: int, table: _OpenTable, batch: Sequence[bytes]) -> list[Addr]:
        """Send the table's chunks not yet in its upload, then ``batch``, as pipelined ``table_chunks`` parts;
        the addresses the daemon computed for ``batch``."""
        if table.upload is None:
            table.upload, table.seq = self._begin_upload(handle), 0
        memtable = table.memtable
        held = memtable.extract() if table.sent < memtable.count() else iter(())
        unsent = list(itertools.islice(held, table.sent, None))
        chunks = [data for _, data in unsent] + list(batch)
        lengths = list(map(len, chunks))
        target = min(PART_BYTES, self._conn.max_message // 2)
        upload, first = table.upload, table.seq
        parts = runs(lengths, target)

        offsets = list(itertools.accumulate(lengths, initial=0))
        attach = self._conn.attachments
        memory = self._part_memory(handle) if attach else None
        assert memory is None or window < memory.slots  # a slot is free again once its part was answered

        def requests() -> Iterator[tuple[dict[str, Any], bytes | None]]:
            for seq, (start, end) in enumerate(parts, first):
                body = {"handle": handle, "upload": upload, "seq": seq, "lengths": p.encode_lengths(lengths[start:end])}
                shared = memory.put(seq, chunks[start:end], offsets[end] - offsets[start]) if memory else None
                if shared is not None:  # the daemon reads it in this process's part memory
                    yield {**body, "shared": shared}, None
                    continue
                data = b"".join(chunks[start:end])
                yield (body, data) if attach else ({**body, "data": data}, None)  # attached: read in place

        try:
            replied = self._conn.pipeline(p.TABLE_CHUNKS, requests(), window, _reply_addrs)
        except BaseException:
            self._drop_part_memory()  # a part given up on may still be read: its slot is never written again
            raise
        table.seq += len(parts)
        addrs = list(itertools.chain.from_iterable(replied))
        if len(addrs) != len(chunks) or any(a != b for (a, _), b in zip(unsent, addrs)):
            raise p.ProtocolError("the daemon answered other addresses than the chunks of this process have")
        table.sent += len(unsent)
        return addrs[len(unsent):]

    def _part_memory(self, handle: int) -> PartMemory | None:
        """The part memory handed to session ``handle``, made and handed over on first use; None if the daemon
        offers none or it failed (logged once per store and greeting: parts then go through the socket)."""
        if self._parts_socket is None or self._parts_token is None:
            return None
        memory = self._parts
        if memory is not None and self._parts_handed_to == handle:
            return memory
        try:
            if memory is None:
                memory = self._parts = PartMemory(PARTS_IN_FLIGHT + 1, PART_BYTES)
            memory.hand_over(self._parts_socket, self._parts_token, HAND_OVER_WAIT_S)
        except PartMemoryUnavailable as err:
            log.warning("nbsd part memory unavailable, parts of %s go through the socket: %s", self.spec, err)
            self._drop_part_memory()
            self._parts_socket = None
            return None
        self._parts_handed_to = handle
        return memory

    def _drop_part_memory(self) -> None:
        memory, self._parts, self._parts_handed_to = self._parts, None, None
        if memory is not None:
            memory.close()

    def _send_rest(self, handle: int, window: int, table: _OpenTable) -> None:
        """Send what the table's upload still lacks, beginning it if need be."""
        if table.sent < table.memtable.count() or table.upload is None:
            self._send_chunks(handle, window, table, ())

    def _end_table(self, handle: int, window: int, table: _OpenTable) -> TableSpec:
        """Send what the upload still lacks, end it, and return the table's spec (0 chunks: no table)."""
        self._send_rest(handle, window, table)
        return self._request_end(handle, table.upload)

    def _request_end(self, handle: int, upload: int | None) -> TableSpec:
        reply = self._conn.request(p.TABLE_END, {"handle": handle, "upload": upload}, self._commit_timeout)
        return p.decode_table_spec(reply, p.TABLE_END)

    def commit(self, current: bytes, last: bytes) -> bool:
        started = time.perf_counter_ns()
        current, last = Addr(current), Addr(last)
        try:
            with self._lock:
                self._flush()
                reply, retried = self._in_session(self._commit_sender(current, last))
                contents = p.decode_contents(p.reply_field(reply, "contents", dict, p.COMMIT))
                ok = p.reply_field(reply, "ok", bool, p.COMMIT)
                if not ok and retried and self._landed(current, contents):
                    ok = True  # our first attempt landed; its reply was lost
                if ok:
                    self._novel = []
                self._set_contents(contents)
                return ok
        finally:
            self._stats.commit_latency.sample_time(started)

    def _commit_sender(self, current: Addr, last: Addr) -> Callable[[int], tuple[Any, bool]]:
        """Sends the commit; says with the reply whether it was sent before (a refusal may then hide our landing)."""
        sends = 0

        def send(handle: int) -> tuple[Any, bool]:
            nonlocal sends
            sends += 1
            reply = self._conn.request(p.COMMIT, {"current": bytes(current), "last": bytes(last), "handle": handle},
                                       self._commit_timeout)
            return reply, sends > 1 or self._conn.last_attempts > 1

        return send

    def _landed(self, current: Addr, contents: ManifestContents) -> bool:
        names = {s.name for s in contents.specs}
        return contents.root == current and all(s.name in names for s in self._novel)

    def rebase(self) -> None:
        with self._lock:
            reply = self._call(p.REBASE, {})
            self._set_contents(p.decode_contents(p.reply_field(reply, "contents", dict, p.REBASE)))

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """End the session; uncommitted writes are dropped, as with a direct store."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._handle is not None:
                    self._send_report()
                    self._conn.request(p.CLOSE, {"handle": self._handle}, timeout=2.0, retries=0)
            except p.DaemonUnavailableError:
                pass  # the daemon will expire the session
            finally:
                self._closed = True
                self._drop_part_memory()

    def __enter__(self) -> DaemonStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DaemonStore({self.spec!r}, endpoint={self._conn.endpoint!r})"

"""Request handlers: what each protocol operation does (docs/PROTOCOL.md).

The server calls ``try_inline`` on its own thread for requests that need no
I/O beyond the cache, and ``handle`` on a worker thread for everything else.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from nbs.addr import Addr
from nbs.errors import NBSError, UploadBusyError
from nbs.upload_memory import UPLOAD_MEMORY
from nbsclient import protocol as p
from nbsd.cache import ChunkCache
from nbsd.cache_filler import CacheFiller
from nbsd.config import Config
from nbsd.counts import Counts, CountsByKey, Tally
from nbs import chunk_workers
from nbsd.heap import heap_figures
from nbsd.inflight import InflightFetches, Shared
from nbsd.part_memory import MAPPED
from nbsd.sessions import Session, Sessions
from nbsd.stores import RESERVED_FILES, StoreOpener
from nbsd.timings import Timings
from nbsd.version import VERSION

log = logging.getLogger(__name__)

COMMIT_MEMORY = 4096
WAIT_FOR_SHARED_FETCH = 600.0  # in all, however many other fetches a request waits for
WAIT_FOR_FILLS = 5.0  # stats waits this long for the cache fills of reads answered before it
WAIT_FOR_UPLOAD_END = 600.0


@dataclass
class StoreFigures(Counts):
    get_requests: int = 0
    chunks_requested: int = 0
    chunks_from_cache: int = 0
    chunks_fetched: int = 0
    chunks_shared: int = 0  # served from another request's read of the same chunks, while it was in flight
    bytes_fetched: int = 0
    tables_written: int = 0
    bytes_written: int = 0  # as clients sent them: whole tables, records or raw chunks
    commits: int = 0
    commits_lost: int = 0

    def count_get(self, requested: int, cached: int) -> None:
        """``add`` for every get, without its keyword dict and look-ups by name: a cached chunk's inline get
        takes about 3 us of the daemon's thread in all, and ``add`` made it 1.5 us longer."""
        with self._lock:
            self.get_requests += 1
            self.chunks_requested += requested
            self.chunks_from_cache += cached


class Service:
    def __init__(self, config: Config, cache: ChunkCache, opener: StoreOpener) -> None:
        self.config = config
        self.cache = cache
        self.filler = CacheFiller(cache)
        self.opener = opener
        self.sessions = Sessions(config.session_ttl, opener.closed)
        self.inflight = InflightFetches()
        self.started = time.time()
        self.requests = Tally()  # by operation
        self.timings = Timings()
        self.errors = Tally()  # by error kind
        self.figures = CountsByKey(StoreFigures)
        self.parts_socket: str | None = None  # where clients hand over part memory (ipc only, when allowed)
        self.chunk_parts = Tally()  # table_chunks parts received, by how their bytes came
        self._commits: OrderedDict[tuple[int, int], bool] = OrderedDict()  # outcome by (handle, request id)
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[bytes, dict[str, Any], int], Any]] = {
            p.HELLO: self._hello, p.OPEN: self._open, p.CLOSE: self._close, p.GET: self._get,
            p.HAS: self._has, p.WRITE_TABLE: self._write_table, p.TABLE_BEGIN: self._table_begin,
            p.TABLE_PART: self._table_part, p.TABLE_CHUNKS: self._table_chunks, p.TABLE_END: self._table_end,
            p.COMMIT: self._commit,
            p.REBASE: self._rebase, p.COUNT: self._count, p.REPORT: self._report, p.STATS: self._stats,
        }

    # -- dispatch ----------------------------------------------------------------------------

    def try_inline(self, identity: bytes, req: p.Request) -> bytes | None:
        """A reply computed without blocking I/O, or None if the request needs a worker."""
        if req.op == p.STATS and self.filler.pending_bytes:
            return None  # waits for the fills on a worker
        if req.op in (p.HELLO, p.CLOSE, p.REPORT, p.STATS):
            return self.handle(identity, req)
        if req.op == p.GET:
            try:
                session = self.sessions.get(req.body.get("handle"))
                addrs = p.decode_addrs(req.body.get("addrs"))
            except Exception:
                return None  # the worker path reports the error properly
            found: dict[bytes, bytes] = {}
            started = time.perf_counter()
            if self.cache.get_many(addrs, session.store.table_names(), found, tally=False):
                return None
            self._count_inline_get(session, len(addrs), len(found))
            reply = self._encode(req, {"found": found})
            self.timings.observe(p.GET, time.perf_counter() - started)
            return reply
        return None

    def refused(self, req: p.Request) -> None:
        """``req`` was refused unserved (busy).  A refused part leaves a hole in its upload that no later part
        fills, so the upload ends now: the parts after it, waiting on worker threads for their turn, are
        released at once instead of after ``TURN_WAIT_S`` (the client sends the table again).

        Runs on the main thread, so the discard, which may wait for a part being written, gets its own.
        """
        handle, upload_id = req.body.get("handle"), req.body.get("upload")
        if req.op not in p.UPLOAD_PART_OPS or type(handle) is not int or type(upload_id) is not int:
            return
        session = self.sessions.find(handle)
        cause = UploadBusyError("one of its parts was refused (too many requests in flight)")
        upload = session.uploads.take(upload_id, cause) if session is not None else None
        if upload is not None:
            log.info("upload %d ended: %s", upload_id, cause)
            threading.Thread(target=upload.discard, args=(cause,), name="nbsd-discard", daemon=True).start()

    def get_one_inline(self, frame: bytes) -> bytes | None:
        """The reply to a compact get that the cache answers; else None, and the general path takes the frame.

        The hot path of a worker's single read that missed its own cache: the
        fewest steps a hit needs.  Misses (a degraded cache misses), unknown
        sessions and malformed frames go the general way, which fetches, counts
        and reports errors.
        """
        try:
            request_id, handle, addr = p.decode_get_one(frame)
        except p.ProtocolError:
            return None
        session = self.sessions.find(handle)
        if session is None:
            return None
        reply = self.cache.peek(addr, session.store.table_names(), p.got_one_prefix(request_id))
        if reply is None:
            return None
        self._count_inline_get(session, 1, 1)
        return reply

    def handle(self, identity: bytes, req: p.Request, received: float | None = None) -> bytes:
        """The reply to ``req``; ``received`` (``time.perf_counter()`` at arrival) times the wait for a worker too."""
        started = time.perf_counter() if received is None else received
        self.requests.add(req.op)
        try:
            return self._encode(req, self._handlers[req.op](identity, req.body, req.request_id))
        except (p.ProtocolError, NBSError) as err:
            kind = p.BAD_REQUEST if isinstance(err, p.ProtocolError) else p.error_kind(err)
            self.errors.add(kind)
            if kind == p.FORBIDDEN:
                log.info("refused %s from client %s: %s", req.op, identity.hex(), err)
            return p.encode_error(req.request_id, kind, err.message if isinstance(err, p.DaemonError) else str(err))
        except Exception as err:
            log.exception("internal error serving %s", req.op)
            self.errors.add(p.INTERNAL)
            return p.encode_error(req.request_id, p.INTERNAL, f"{type(err).__name__}: {err}")
        finally:
            self.timings.observe(req.op, time.perf_counter() - started)

    @staticmethod
    def _encode(req: p.Request, body: dict[str, Any]) -> bytes:
        """The reply frame: compact for a compact get (its client reads no other form), else msgpack."""
        if req.compact:
            return p.encode_got_one(req.request_id, body["found"].get(req.body["addrs"][0]))
        return p.encode_reply(req.request_id, body)

    def _session(self, body: dict[str, Any]) -> Session:
        return self.sessions.get(body.get("handle"))

    # -- operations ----------------------------------------------------------------------------

    def _hello(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        info = self.cache.info
        cache = {"path": info.path, "map_size": info.map_size, "max_readers": info.max_readers,
                 "cache_id": info.cache_id}
        return {"protocol": p.PROTOCOL_VERSION, "pid": os.getpid(), "max_message": self.config.max_message_size,
                "attachments": True, "cache": cache if self.config.client_fast_path else None,
                "parts_socket": self.parts_socket}

    def _open(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        spec_text = body.get("spec")
        if not isinstance(spec_text, str):
            raise p.ProtocolError("open needs a spec string")
        contents = p.decode_contents(body["contents"]) if body.get("contents") is not None else None
        novel = p.decode_specs(body.get("novel", []))
        key, spec = self.opener.canonical(spec_text)
        store = self.opener.open(spec, contents)
        try:
            if novel:
                store.add_novel_tables(novel)
        except BaseException:
            store.close()
            self.opener.closed(key)
            raise
        session = self.sessions.add(key, store, identity)
        log.debug("session %x opened %s", session.handle, key)
        reply = {"handle": session.handle, "contents": p.encode_contents(store.upstream)}
        if self.parts_socket is not None:
            reply["parts_token"] = session.token
        return reply

    def _close(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        return {"closed": self.sessions.close(body.get("handle"))}

    def _get(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        session = self._session(body)
        addrs = p.decode_addrs(body.get("addrs"))
        view = session.store.table_names()
        found: dict[bytes, bytes] = {}
        missing = self.cache.get_many(addrs, view, found, holders=session.store.tables_holding)
        cached = len(found)
        if missing:
            cached += self._fetch(session, missing, view, found)
        self._count_get(session, len(addrs), cached)
        return {"found": found}

    def _fetch(self, session: Session, missing: list[bytes], view: frozenset[bytes],
               found: dict[bytes, bytes]) -> int:
        """Read cache misses from the backend once, however many requests want them at the same time.

        Chunks go in the cache behind the reply (``CacheFiller``), and the claim
        on them is released only then; a claimant re-checks the cache, so a
        chunk is never read twice by requests that overlap in time.  Counts the
        chunks read and shared in the store's figures; returns how many the
        re-checks found in the cache.
        """
        mine, waiting = self.inflight.claim(missing)
        origins: dict[bytes, Addr] = {}
        got: dict[bytes, bytes] = {}
        before = len(found)
        try:
            to_read = self.cache.get_many(mine, view, found, tally=False) if mine else []
            if to_read:
                got = session.store.get_many_with_origins(to_read, origins)
        except BaseException as err:
            self.inflight.fail(mine, err)
            raise
        self.inflight.serve(mine, got, origins)
        entries = [(bytes(a), got[a], bytes(origins[a])) for a in got if a in origins]
        if entries:
            self.filler.fill(entries, functools.partial(self.inflight.release, mine))
        else:
            self.inflight.release(mine)
        recached = len(found) - before
        found.update(got)
        shared, again = self._wait_for_shared(waiting, view, found)
        read_here: dict[bytes, bytes] = {}
        if again:
            before = len(found)
            rest = self.cache.get_many(again, view, found, tally=False)
            recached += len(found) - before
            if rest:
                read_here = session.store.get_many(rest)
                found.update(read_here)
        self.figures.of(session.key).add(
            chunks_fetched=len(got) + len(read_here), chunks_shared=shared,
            bytes_fetched=sum(map(len, got.values())) + sum(map(len, read_here.values())))
        return recached

    @staticmethod
    def _wait_for_shared(waiting: Shared, view: frozenset[bytes],
                         found: dict[bytes, bytes]) -> tuple[int, list[bytes]]:
        """Take the chunks other requests' fetches read for this one: how many came, and the addresses to read
        here (their fetch failed or took longer than ``WAIT_FOR_SHARED_FETCH`` in all, or found them in a
        table this store does not hold)."""
        shared = 0
        again: list[bytes] = []
        deadline = time.monotonic() + WAIT_FOR_SHARED_FETCH
        for future, addrs in waiting:
            try:
                fetched = future.result(max(0.0, deadline - time.monotonic()))
            except Exception:  # failed or too slow: read them here
                again.extend(addrs)
                continue
            for a in addrs:
                served = fetched.served(a)
                if served is not None and served[1] in view:
                    found[a] = served[0]
                    shared += 1
                else:
                    again.append(a)
        return shared, again

    def _count_inline_get(self, session: Session, requested: int, cached: int) -> None:
        """A get answered on the server's thread: ``handle`` and ``get_many`` did none of the counting."""
        self.cache.counters.count_lookups(cached)
        self._count_get(session, requested, cached)
        self.requests.add(p.GET)

    def _count_get(self, session: Session, requested: int, cached: int) -> None:
        self.figures.of(session.key).count_get(requested, cached)

    def _has(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        session = self._session(body)
        return {"absent": list(session.store.has_many(p.decode_addrs(body.get("addrs"))))}

    def _write_table(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        session = self._session(body)
        data = body.get("data")
        if not isinstance(data, bytes):
            raise p.ProtocolError("write_table needs table bytes")
        spec = session.store.write_table(data)
        self.figures.of(session.key).add(tables_written=1, bytes_written=len(data))
        return {"name": bytes(spec.name), "count": spec.chunk_count}

    def _table_begin(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        session = self._session(body)
        return {"upload": session.uploads.begin(session.store.receive_table())}

    def _table_part(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        """Check a part's records against their addresses and store them; the reply only says it is done."""
        session = self._session(body)
        upload, seq, offset = _ints(body, "upload", "seq", "offset")
        records, addrs = body.get("records"), body.get("addrs")
        if not (isinstance(records, list) and all(type(r) is bytes for r in records) and type(addrs) is bytes):
            raise p.ProtocolError("table_part needs records (a list of bin) and addrs (bin)")
        session.uploads.add_part(upload, seq, offset, records, addrs, p.decode_lengths(body.get("lengths")))
        self.figures.of(session.key).add(bytes_written=sum(map(len, records)))
        return {}

    def _table_chunks(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        """Hash, encode and store a part of chunks; the reply holds their addresses, as computed here."""
        session = self._session(body)
        upload, seq = _ints(body, "upload", "seq")
        shared, data = body.get("shared"), body.get("data")
        if shared is not None:
            if data is not None:
                raise p.ProtocolError("table_chunks has its chunks in data, an attachment or shared: one of them")
            data = session.part_memory.view(shared)
        if not isinstance(data, (bytes, memoryview)):  # memoryview: an attachment or part memory, read in place
            raise p.ProtocolError("table_chunks needs data (bin, an attachment or shared: the chunks back to back)")
        addrs = session.uploads.add_chunks(upload, seq, data, p.decode_lengths(body.get("lengths")))
        self.figures.of(session.key).add(bytes_written=len(data))
        self.chunk_parts.add("shared_memory" if shared is not None else "socket")
        return {"addrs": b"".join(addrs)}

    def _table_end(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        """Build the index from the parts and persist the table as a pending one, as ``write_table`` does.

        A table of records names itself (``name``, ``count``) for the check; a table of chunks need not.
        """
        session = self._session(body)
        (upload,) = _ints(body, "upload")
        name, count = body.get("name"), body.get("count")
        if (name, count) != (None, None) and (type(name) is not bytes or type(count) is not int):
            raise p.ProtocolError("table_end's name (bin) and count (int) go together")
        spec = session.uploads.end(upload, lambda received: session.store.add_received(received, name, count),
                                   WAIT_FOR_UPLOAD_END)
        if spec.chunk_count:  # 0: every chunk was stored already, no table
            self.figures.of(session.key).add(tables_written=1)
        return {"name": bytes(spec.name), "count": spec.chunk_count}

    def _commit(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        session = self._session(body)
        key = (session.handle, rid)
        with self._lock:
            landed = self._commits.get(key)
        if landed is not None:  # a retry of a commit whose reply was lost: its outcome, the store as it is now
            return {"ok": landed, "contents": p.encode_contents(session.store.upstream)}
        current, last = body.get("current"), body.get("last")
        if not (isinstance(current, bytes) and isinstance(last, bytes)):
            raise p.ProtocolError("commit needs current and last addresses")
        ok = session.store.commit(Addr(current), Addr(last))
        self.figures.of(session.key).add(commits=ok, commits_lost=not ok)
        with self._lock:
            self._commits[key] = ok  # only the outcome: a whole reply lists every table of the store
            while len(self._commits) > COMMIT_MEMORY:
                self._commits.popitem(last=False)
        return {"ok": ok, "contents": p.encode_contents(session.store.upstream)}

    def _rebase(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        session = self._session(body)
        session.store.rebase()
        return {"contents": p.encode_contents(session.store.upstream)}

    def _count(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        return {"count": self._session(body).store.count()}

    def _report(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        """Clients report the hits they served from the cache themselves, and damage they saw."""
        hits, misses = body.get("hits", 0), body.get("misses", 0)
        if isinstance(hits, int) and isinstance(misses, int) and hits >= 0 and misses >= 0:
            self.cache.counters.add(client_hits=hits, client_misses=misses)
        corrupt = body.get("corrupt", [])
        if corrupt:
            self.cache.drop_corrupt(p.decode_addrs(corrupt))
        return {}

    def _stats(self, identity: bytes, body: dict[str, Any], rid: int) -> Any:
        """The snapshot, once the cache fills of the reads answered before it are done (or ``WAIT_FOR_FILLS``):
        its cache figures then count every chunk those reads fetched."""
        self.filler.drain(WAIT_FOR_FILLS)
        return self.snapshot()

    # -- reporting -----------------------------------------------------------------------------

    @property
    def shared_fetches(self) -> int:
        """Chunks requests got from another request's read in flight, over every store."""
        return sum(fig.chunks_shared for _, fig in self.figures.items())

    def snapshot(self) -> dict[str, Any]:
        proc = psutil.Process()
        workers = chunk_workers.pool()
        counters = self.cache.counters.as_dict()
        served = counters["hits"] + counters["client_hits"]
        asked = served + counters["misses"]
        sessions = self.sessions.per_store()
        stores = {key: {**fig.as_dict(), "sessions": sessions.get(key, 0)} for key, fig in self.figures.items()}
        for key, count in sessions.items():
            stores.setdefault(key, {**StoreFigures().as_dict(), "sessions": count})
        index_cache, small = self.opener.caches.index_cache, self.opener.small_tables
        calls, failed = self.opener.backend.snapshot()
        config = self.config
        return {
            "version": VERSION,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started, 1),
            "endpoint": config.resolved_endpoint(),
            "metrics": config.metrics,
            "policy": {"local_roots": config.local_roots, "aws_stores": config.aws_stores,
                       "allow_mem": config.allow_mem},
            "sessions": len(self.sessions),
            "requests": self.requests.as_dict(),
            "errors": self.errors.as_dict(),
            "cache": {**counters, "hit_ratio": round(served / asked, 4) if asked else None,
                      "bytes": self.cache.total_bytes(), "budget": self.cache.budget,
                      "entries": self.cache.entries(), "path": self.cache.path, "state": self.cache.health.state,
                      "fill_pending_bytes": self.filler.pending_bytes, "fills_deferred": self.filler.deferred,
                      "fills_inline": self.filler.inline},
            "shared_fetches": self.shared_fetches,
            "index_cache": {"bytes": index_cache.total_size if index_cache is not None else 0,
                            "budget": index_cache.max_size if index_cache is not None else 0,
                            "tables": len(index_cache) if index_cache is not None else 0},
            "open_files": {"tables": self.opener.open_files(), "table_budget": self.opener.fd_budget,
                           "budget": config.max_open_files, "reserved": RESERVED_FILES, "threads": config.threads,
                           "process": len(proc.open_files()), "fds": proc.num_fds(),
                           "limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0]},
            "backend": {"requests": {f"{service} {op}": n for (service, op), n in sorted(calls.items())},
                        "errors": {f"{service} {op} {code}": n for (service, op, code), n in sorted(failed.items())}},
            "small_table_cache": {"bytes": small.total_size if small is not None else 0,
                                  "budget": small.max_size if small is not None else 0,
                                  "tables": len(small) if small is not None else 0},
            "memory": {"rss": proc.memory_info().rss, "threads": proc.num_threads(), **heap_figures()},
            "chunk_workers": {"running": workers.running, "configured": workers.count, "failures": workers.failures},
            "mem_store": {"bytes": self.opener.mem.held_bytes, "budget": self.opener.mem.max_bytes},
            "upload_memory": {"bytes": UPLOAD_MEMORY.held, "budget": UPLOAD_MEMORY.limit or 0,
                              "refused": UPLOAD_MEMORY.refusals},
            "chunk_parts": {"parts_socket": self.parts_socket, "shared_memory": self.chunk_parts["shared_memory"],
                            "socket": self.chunk_parts["socket"], "memories": MAPPED.held,
                            "most_memories": MAPPED.limit, "memory_bytes": MAPPED.held_bytes,
                            "most_memory_bytes": MAPPED.limit_bytes},
            "stores": stores,
        }

    def close(self) -> None:
        self.filler.close(WAIT_FOR_FILLS)
        self.sessions.close_all()
        chunk_workers.pool().shutdown()  # idle now that no session is left: end them with the daemon


def _ints(body: dict[str, Any], *keys: str) -> list[int]:
    """The integer fields ``keys`` of a request body."""
    values: list[int] = []
    for key in keys:
        value = body.get(key)
        if type(value) is not int:
            raise p.ProtocolError(f"{key} must be an integer")
        values.append(value)
    return values

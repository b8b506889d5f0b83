"""Client sessions: one ``NomsBlockStore`` per open store handle.

Each client handle gets its own store object (its own root view, pending
tables and tables being uploaded), exactly as if the client had opened the store directly; the objects
share the daemon's caches and manifest locks.  Handles are random 63-bit
numbers so a handle from before a restart never reaches another session.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from nbs.store import NomsBlockStore
from nbsclient.part_memory import TOKEN_SIZE
from nbsclient.protocol import UNKNOWN_SESSION, UnknownSessionError
from nbsd.part_memory import SessionPartMemory
from nbsd.uploads import SessionUploads


@dataclass
class Session:
    handle: int
    key: str
    store: NomsBlockStore
    owner: bytes
    last_used: float = field(default_factory=time.monotonic)
    uploads: SessionUploads = field(default_factory=SessionUploads)
    token: bytes = field(default_factory=lambda: secrets.token_bytes(TOKEN_SIZE))  # hands over part memory
    part_memory: SessionPartMemory = field(default_factory=SessionPartMemory)


class Sessions:
    def __init__(self, ttl: float, on_close: Callable[[str], None] = lambda key: None) -> None:
        """``on_close(key)`` follows the close of each session's store."""
        self.ttl = ttl
        self._on_close = on_close
        self._sessions: dict[int, Session] = {}
        self._by_token: dict[bytes, Session] = {}
        self._lock = threading.Lock()

    def add(self, key: str, store: NomsBlockStore, owner: bytes) -> Session:
        with self._lock:
            handle = secrets.randbits(63)
            while handle in self._sessions:
                handle = secrets.randbits(63)
            session = Session(handle, key, store, owner)
            self._sessions[handle] = session
            self._by_token[session.token] = session
            return session

    def get(self, handle: object) -> Session:
        with self._lock:
            session = self._sessions.get(handle) if isinstance(handle, int) else None
            if session is None:
                raise UnknownSessionError(UNKNOWN_SESSION,
                                          f"no session {handle!r} (the daemon restarted or it expired)")
            session.last_used = time.monotonic()
            return session

    def find(self, handle: int) -> Session | None:
        """``get`` for the hot path: None instead of an exception, no lock (one dict read is atomic)."""
        session = self._sessions.get(handle)
        if session is not None:
            session.last_used = time.monotonic()
        return session

    def part_memory(self, token: bytes) -> SessionPartMemory | None:
        """The part memory of the session whose token is ``token``, if it is open."""
        with self._lock:
            session = self._by_token.get(token)
        return session.part_memory if session is not None else None

    def close(self, handle: object) -> bool:
        with self._lock:
            session = self._sessions.pop(handle, None) if isinstance(handle, int) else None
            if session is not None:
                del self._by_token[session.token]
        if session is not None:
            try:
                session.part_memory.close()
                session.uploads.discard_all()
                session.store.close()
            finally:
                self._on_close(session.key)
        return session is not None

    def expire(self) -> int:
        """Close sessions idle longer than the TTL; returns how many."""
        cutoff = time.monotonic() - self.ttl
        with self._lock:
            stale = [h for h, s in self._sessions.items() if s.last_used < cutoff]
        return sum(self.close(h) for h in stale)

    def close_all(self) -> None:
        with self._lock:
            handles = list(self._sessions)
        for h in handles:
            self.close(h)

    def __len__(self) -> int:
        return len(self._sessions)

    def per_store(self) -> Counter[str]:
        with self._lock:
            return Counter(s.key for s in self._sessions.values())

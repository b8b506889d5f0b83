"""``ValueStore``: reads and writes Noms values over any ``nbs.ChunkStore``.

Reads decode chunks (with a small cache of recently read values); writes encode
a value, put its chunk and return the ``Ref`` Go's ``WriteValue`` returns.
Chunks only become durable when the database commits a new root.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from nbs.addr import Addr
from nbs.chunk_store import ChunkStore
from nbs.manifest import NOMS_VERSION
from nbs.noms.decode import decode_value
from nbs.noms.errors import DecodeError, NomsError
from nbs.noms.values import Ref, Value

DEFAULT_CACHE_ENTRIES = 4096


class ValueStore:
    """A ``ValueReader`` and writer over a chunk store."""

    def __init__(self, cs: ChunkStore, cache_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        version = cs.version()
        if version and version != NOMS_VERSION:
            raise NomsError(f"SDK version {NOMS_VERSION} incompatible with data of version {version}")
        self.cs = cs
        self._cache: OrderedDict[bytes, Value] = OrderedDict()
        self._cache_entries = cache_entries

    def _decode(self, addr: bytes, data: bytes) -> Value:
        try:
            return decode_value(data, self)
        except DecodeError as err:
            raise DecodeError(f"chunk {Addr(addr)} is corrupt: {err}") from err

    def _remember(self, addr: bytes, value: Value) -> None:
        self._cache[addr] = value
        if len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)

    def read_value(self, addr: bytes) -> Value | None:
        """The value stored under ``addr``, or None if there is no such chunk."""
        key = bytes(addr)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        data = self.cs.get(Addr(key))
        if data is None:
            return None
        value = self._decode(key, data)
        self._remember(key, value)
        return value

    def read_values(self, addrs: Sequence[bytes]) -> dict[bytes, Value]:
        """Every found value, keyed by address; one ``get_many`` for the ones not cached.

        Values read in bulk (typically prolly-tree leaves during a walk) are not
        cached, so walking a large collection does not evict everything else.
        """
        result: dict[bytes, Value] = {}
        missing: list[Addr] = []
        for addr in addrs:
            key = bytes(addr)
            cached = self._cache.get(key)
            if cached is not None:
                result[key] = cached
            else:
                missing.append(Addr(key))
        if missing:
            for addr, data in self.cs.get_many(missing).items():
                result[bytes(addr)] = self._decode(addr, data)
        return result

    def write_value(self, value: Value) -> Ref:
        """Put the value's chunk (for a collection: its root node) and return its ref."""
        ref = value.ref_to()
        self.cs.put(value.encoding())
        self._remember(bytes(ref.target), value)
        return ref

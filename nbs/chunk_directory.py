"""One merged index over a store's upstream tables, so a read costs one probe whatever the table count.

Probing each table's index in turn costs microseconds per table in Python (Go
pays ~100 ns), so a store near the conjoin threshold read ~10x slower than the
same chunks in one table.  The directory is an open-addressing hash table
(linear probing, load at most 1/2) in flat arrays: per slot the first 8 bytes
of an address (``Q``) and an entry number (``I``, 0 = empty); per entry the
number of its table (``I``).  A table's entries are numbered consecutively in
the order of its sorted prefix map, so an entry number is also a position in
that map: it gives the ordinal, and the full address is confirmed against the
table's own suffixes.  About 28 bytes per chunk, charged to the index cache.

Tables are only ever added.  A table set names the directory's tables it
reads (``live``), so snapshots that concurrent readers hold stay valid while
a newer set adds tables: an entry is written before the slot that points to
it, and growth publishes new arrays in one assignment.  Tables that left the
view (conjoined away) keep their stale entries until they outnumber the live
ones; then the table set builds a fresh directory.
"""

from __future__ import annotations

import threading
import weakref
from array import array
from collections.abc import Callable, Iterable, Sequence

from nbs.addr import PREFIX_SIZE, SUFFIX_SIZE
from nbs.chunk_source import TableChunkSource
from nbs.forksafe import register

MIN_SLOTS = 64
_KEY_SIZE = 8  # bytes of the address that key the hash (all of Go's 8-byte prefix)

Located = list[tuple[int, bytes]]  # (ordinal within the table, address)
Charge = Callable[[int], None]


def _release(charge: Charge, charged: list[int]) -> None:
    charge(-charged[0])


class ChunkDirectory:
    """Address -> (table, ordinal) over every table added, filtered by the caller's live tables."""

    def __init__(self, charge: Charge | None = None) -> None:
        """``charge`` is told of every change in the bytes held (the index cache's accounting)."""
        self._lock = threading.Lock()
        register(self)
        self._tables: list[tuple[TableChunkSource, array, bytes, int]] = []  # type: ignore[type-arg]
        self._numbers: dict[bytes, int] = {}
        self._counts: list[int] = []
        self._table_of = array("I", [0])  # entry number -> table number; entry 0 marks an empty slot
        self._slots: tuple[array, array, int] = self._empty(MIN_SLOTS)  # type: ignore[type-arg]
        self._charge = charge
        self._charged = [0]
        if charge is not None:
            weakref.finalize(self, _release, charge, self._charged)
            self._account()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    @staticmethod
    def _empty(size: int) -> tuple[array, array, int]:  # type: ignore[type-arg]
        return array("Q", bytes(8 * size)), array("I", bytes(4 * size)), size - 1

    @property
    def table_count(self) -> int:
        return len(self._tables)

    @property
    def entry_count(self) -> int:
        return len(self._table_of) - 1

    @property
    def memory_size(self) -> int:
        keys, entries, _ = self._slots
        return (keys.itemsize * len(keys) + entries.itemsize * len(entries)
                + self._table_of.itemsize * len(self._table_of))

    def add(self, tables: Iterable[TableChunkSource]) -> frozenset[int]:
        """Numbers of ``tables`` in this directory (the live set of a view), adding those not yet present."""
        with self._lock:
            numbers = []
            for table in tables:
                number = self._numbers.get(bytes(table.name))
                numbers.append(self._append(table) if number is None else number)
            self._account()
            return frozenset(numbers)

    def worn(self, live: frozenset[int]) -> bool:
        """True when stale entries (of tables outside ``live``) outnumber live ones: time for a fresh directory."""
        live_entries = sum(self._counts[n] for n in live)
        return self.entry_count - live_entries > live_entries

    def _append(self, table: TableChunkSource) -> int:
        index = table.index()
        number = len(self._tables)
        first = len(self._table_of)
        self._table_of.extend(array("I", [number]) * index.chunk_count)
        keys, entries, mask = self._slots
        if 2 * len(self._table_of) > mask + 1:
            size = mask + 1
            while 2 * len(self._table_of) > size:
                size *= 2
            keys, entries, mask = grown = self._empty(size)
            for old, _, _, old_first in self._tables:
                _insert(keys, entries, mask, old.index().prefixes, old_first)
            _insert(keys, entries, mask, index.prefixes, first)
            self._slots = grown
        else:
            _insert(keys, entries, mask, index.prefixes, first)
        self._tables.append((table, index.ordinals, index.suffixes, first))
        self._counts.append(index.chunk_count)
        self._numbers[bytes(table.name)] = number
        return number

    def _account(self) -> None:
        if self._charge is not None:
            size = self.memory_size
            self._charge(size - self._charged[0])
            self._charged[0] = size

    def locate(self, addr: bytes, live: frozenset[int]) -> tuple[TableChunkSource, int] | None:
        """The live table holding ``addr`` and its ordinal there, or None."""
        keys, entries, mask = self._slots
        key = int.from_bytes(addr[:_KEY_SIZE], "big")
        suffix = addr[PREFIX_SIZE:]
        table_of = self._table_of
        slot = key & mask
        while True:
            entry = entries[slot]
            if not entry:
                return None
            if keys[slot] == key:
                number = table_of[entry]
                if number in live:
                    table, ordinals, suffixes, first = self._tables[number]
                    ordinal = ordinals[entry - first]
                    start = ordinal * SUFFIX_SIZE
                    if suffixes[start:start + SUFFIX_SIZE] == suffix:
                        return table, ordinal
            slot = (slot + 1) & mask

    def locate_many(self, addrs: Sequence[bytes], live: frozenset[int]
                    ) -> tuple[dict[TableChunkSource, Located], list[bytes]]:
        """Addresses grouped by the live table holding them, and those none holds."""
        groups: dict[TableChunkSource, Located] = {}
        missing: list[bytes] = []
        locate = self.locate
        for addr in addrs:
            found = locate(addr, live)
            if found is None:
                missing.append(addr)
            else:
                table, ordinal = found
                group = groups.get(table)
                if group is None:
                    groups[table] = [(ordinal, addr)]
                else:
                    group.append((ordinal, addr))
        return groups, missing

    def absent(self, addrs: Sequence[bytes], live: frozenset[int]) -> list[bytes]:
        """The addresses of ``addrs`` no live table holds."""
        locate = self.locate
        return [a for a in addrs if locate(a, live) is None]


def _insert(keys: array, entries: array, mask: int, prefixes: Sequence[int], first: int) -> None:  # type: ignore[type-arg]
    """Slot each prefix (entry numbers from ``first``); the key is written before the entry that makes it visible."""
    entry = first
    for key in prefixes:
        slot = key & mask
        while entries[slot]:
            slot = (slot + 1) & mask
        keys[slot] = key
        entries[slot] = entry
        entry += 1

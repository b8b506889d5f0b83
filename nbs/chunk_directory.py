"""One merged index over a store's upstream tables, so a read costs one probe whatever the table count.

Probing each table's index in turn costs microseconds per table in Python (Go
pays ~100 ns), so a store near the conjoin threshold read ~10x slower than the
same chunks in one table.  The directory is an open-addressing hash table
(linear probing, load at most 1/2) in flat arrays: per slot the first 8 bytes
of an address (``Q``) and an entry number (``I``, 0 = empty); per entry the
number of its table (``I``).  A table's entries are numbered consecutively in
the order of its sorted prefix map, so an entry number is also a position in
that map: it gives the ordinal, and the full address is confirmed against the
table's own suffixes.  28-52 bytes per chunk (the load varies from 1/4 to
1/2), charged to the index cache.

Tables are only ever added.  A reader passes its view: the directory's table
numbers it reads, each mapped to its own opened table, so snapshots that
concurrent readers hold stay valid while a newer view adds tables (an entry
is written before the slot that points to it, and growth publishes new arrays
in one assignment), and the sessions of one store can share a directory
while each reads through its own tables.  Tables that left the views
(conjoined away) keep their stale entries until these outnumber the live
ones; then a fresh directory is built.
"""

from __future__ import annotations

import struct
import threading
import weakref
from array import array
from collections.abc import Callable, Mapping, Sequence

from nbs.addr import ADDR_SIZE, SUFFIX_SIZE
from nbs.chunk_source import Located, TableChunkSource
from nbs.forksafe import register

MIN_SLOTS = 64
_SPLIT = struct.Struct(f">Q{SUFFIX_SIZE}s")  # an address: its prefix, which keys the hash, and its suffix
View = Mapping[int, TableChunkSource]  # directory table number -> the reader's own table
Charge = Callable[[int], None]


def _release(charge: Charge, charged: list[int]) -> None:
    charge(-charged[0])


class ChunkDirectory:
    """Address -> (table, ordinal) over every table added, answered within the caller's view."""

    def __init__(self, charge: Charge | None = None) -> None:
        """``charge`` is told of every change in the bytes held (the index cache's accounting)."""
        self._lock = threading.Lock()
        register(self)
        # per table number: its prefixes, ordinals and suffixes (its index's), and its first entry number
        self._tables: list[tuple[array, array, bytes, int]] = []  # type: ignore[type-arg]
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

    def add(self, tables: Sequence[TableChunkSource]) -> dict[int, TableChunkSource]:
        """The view of ``tables``: their numbers here, adding those not yet present."""
        with self._lock:
            new = {bytes(t.name): t for t in tables if bytes(t.name) not in self._numbers}
            self._reserve(self.entry_count + sum(t.count() for t in new.values()))
            for table in new.values():
                self._append(table)
            self._account()
            return {self._numbers[bytes(t.name)]: t for t in tables}

    def worn(self, view: View) -> bool:
        """True when stale entries (of tables outside ``view``) outnumber live ones: time for a fresh directory.

        An empty view (a store not yet opened on its manifest) reads nothing and wears nothing.
        """
        live_entries = sum(self._counts[n] for n in view)
        return bool(view) and self.entry_count - live_entries > live_entries

    def _reserve(self, entries: int) -> None:
        """Grow the slots (rehashing what is there) so that ``entries`` fit at a load of at most 1/2."""
        keys, entries_of_slot, mask = self._slots
        size = mask + 1
        if 2 * (entries + 1) <= size:
            return
        while 2 * (entries + 1) > size:
            size *= 2
        grown = keys, entries_of_slot, mask = self._empty(size)
        for prefixes, _, _, first in self._tables:
            _insert(keys, entries_of_slot, mask, prefixes, first)
        self._slots = grown

    def _append(self, table: TableChunkSource) -> None:
        index = table.index()
        number = len(self._tables)
        first = len(self._table_of)
        self._table_of.extend(array("I", [number]) * index.chunk_count)
        keys, entries, mask = self._slots
        _insert(keys, entries, mask, index.prefixes, first)
        self._tables.append((index.prefixes, index.ordinals, index.suffixes, first))
        self._counts.append(index.chunk_count)
        self._numbers[bytes(table.name)] = number

    def _account(self) -> None:
        if self._charge is not None:
            size = self.memory_size
            self._charge(size - self._charged[0])
            self._charged[0] = size

    def locate(self, addr: bytes, view: View) -> tuple[TableChunkSource, int] | None:
        """The table of ``view`` holding ``addr`` and its ordinal there, or None (``locate_many``'s probe, for one)."""
        if len(addr) != ADDR_SIZE:
            return None
        key, suffix = _SPLIT.unpack(addr)
        keys, entries, mask = self._slots
        slot = key & mask
        while entry := entries[slot]:
            if keys[slot] == key:
                number = self._table_of[entry]
                table = view.get(number)
                if table is not None:
                    _, ordinals, suffixes, first = self._tables[number]
                    ordinal = ordinals[entry - first]
                    if suffixes.startswith(suffix, ordinal * SUFFIX_SIZE):
                        return table, ordinal
            slot = (slot + 1) & mask
        return None

    def locate_many(self, addrs: Sequence[bytes], view: View) -> tuple[dict[TableChunkSource, Located], list[bytes]]:
        """Addresses grouped by the table of ``view`` holding them, and those none holds."""
        return self._probe_all(addrs, view, grouped=True)

    def absent(self, addrs: Sequence[bytes], view: View) -> list[bytes]:
        """The addresses of ``addrs`` no table of ``view`` holds."""
        return self._probe_all(addrs, view, grouped=False)[1]

    def _probe_all(self, addrs: Sequence[bytes], view: View,
                   grouped: bool) -> tuple[dict[TableChunkSource, Located], list[bytes]]:
        """``locate_many``, whose groups stay empty unless ``grouped``.

        One loop over all addresses with everything in locals: this runs once
        per chunk read, and a call per address cost more than the probe
        itself.  Prefixes and suffixes are split out of all the addresses
        joined, in one C call, not sliced out of each.
        """
        joined = b"".join(addrs)
        missing: list[bytes] = []
        if len(joined) != ADDR_SIZE * len(addrs):  # some are no address, so no table holds them
            missing = [addr for addr in addrs if len(addr) != ADDR_SIZE]
            addrs = [addr for addr in addrs if len(addr) == ADDR_SIZE]
            joined = b"".join(addrs)
        keys, entries, mask = self._slots
        table_of, tables, in_view = self._table_of, self._tables, view.get
        groups: dict[TableChunkSource, Located] = {}
        current = -1  # the number of the table probed last: its index, and its group once it has one, in locals
        table: TableChunkSource | None = None
        group: Located | None = None
        ordinals: Sequence[int] = ()
        suffixes, first = b"", 0
        for (key, suffix), addr in zip(_SPLIT.iter_unpack(joined), addrs):
            slot = key & mask
            while True:
                entry = entries[slot]
                if not entry:
                    missing.append(addr)
                    break
                if keys[slot] == key:
                    number = table_of[entry]
                    if number != current:
                        viewed = in_view(number)
                        if viewed is not None:
                            _, ordinals, suffixes, first = tables[number]
                            table, current = viewed, number
                            group = groups.get(viewed) if grouped else None
                    if number == current:
                        ordinal = ordinals[entry - first]
                        if suffixes.startswith(suffix, ordinal * SUFFIX_SIZE):
                            if grouped:
                                if group is None:
                                    assert table is not None  # set with current
                                    group = groups[table] = Located()
                                group.ordinals.append(ordinal)
                                group.addrs.append(addr)
                            break
                slot = (slot + 1) & mask
        return groups, missing


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

"""Manifest contents, the lock hash, and the interface every manifest backend implements.

A manifest names a store's root and the tables holding its chunks.  Writers
replace it with optimistic concurrency: an update succeeds only if the stored
lock still equals the lock the writer last saw.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from nbs.addr import ADDR_SIZE, EMPTY_ADDR, Addr
from nbs.errors import AddressError, ManifestError
from nbs.stats import Stats

STORAGE_VERSION = "4"
NOMS_VERSION = "7.18"

Hook = Callable[[], None]


@dataclass(frozen=True)
class TableSpec:
    """A table named by a manifest, with its chunk count."""

    name: Addr
    chunk_count: int

    def __str__(self) -> str:
        return f"{self.name}:{self.chunk_count}"


@dataclass(frozen=True)
class ManifestContents:
    vers: str = NOMS_VERSION
    lock: Addr = EMPTY_ADDR
    root: Addr = EMPTY_ADDR
    specs: tuple[TableSpec, ...] = field(default_factory=tuple)

    def size(self) -> int:
        """Bytes charged by the manifest cache."""
        return len(self.vers) + 2 * ADDR_SIZE + len(self.specs) * (ADDR_SIZE + 4)

    @classmethod
    def for_commit(cls, root: bytes, specs: Sequence[TableSpec]) -> ManifestContents:
        """Contents this code writes: current Noms version and the lock of (root, specs)."""
        root = Addr(root)
        return cls(NOMS_VERSION, generate_lock_hash(root, specs), root, tuple(specs))


def generate_lock_hash(root: bytes, specs: Iterable[TableSpec]) -> Addr:
    """SHA-512 prefix of the root followed by every table name, in manifest order."""
    digest = hashlib.sha512(bytes(root))
    for spec in specs:
        digest.update(spec.name)
    return Addr(digest.digest()[:ADDR_SIZE])


def format_specs(specs: Iterable[TableSpec]) -> str:
    """``name:count:name:count...``, the tail of a manifest file and DynamoDB ``specs``."""
    return ":".join(str(s) for s in specs)


def parse_specs(fields: Sequence[str], manifest: str) -> tuple[TableSpec, ...]:
    """Table specs from alternating name/count fields."""
    if len(fields) % 2:
        raise ManifestError(manifest, "table list has a name without a chunk count")
    specs = []
    for name, count in zip(fields[0::2], fields[1::2]):
        try:
            addr = Addr.parse(name)
        except AddressError as err:
            raise ManifestError(manifest, f"bad table name {name!r}") from err
        if not (count.isascii() and count.isdigit()) or int(count) > 0xFFFFFFFF:
            raise ManifestError(manifest, f"bad chunk count {count!r} for table {name}")
        specs.append(TableSpec(addr, int(count)))
    return tuple(specs)


class Manifest(abc.ABC):
    """Where a store's manifest lives (a file, a DynamoDB item, memory)."""

    @abc.abstractmethod
    def name(self) -> str:
        """Key for process-wide caches and locks (a path, or DynamoDB table + namespace)."""

    @abc.abstractmethod
    def parse_if_exists(self, stats: Stats, read_hook: Hook | None = None) -> ManifestContents | None:
        """Current contents, or None when the store has never been committed."""

    @abc.abstractmethod
    def update(self, last_lock: Addr, new: ManifestContents, stats: Stats,
               write_hook: Hook | None = None) -> ManifestContents:
        """Store ``new`` if the stored lock is ``last_lock``; return what is stored afterwards."""

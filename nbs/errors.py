"""Typed errors of the NBS library.

Every failure the library reports is an ``NBSError``; callers can catch the
base class or a specific kind.  Go Noms panics in most of these situations
(see NBS-FORMAT.md section 12); here they are ordinary exceptions that leave
the store unchanged.
"""

from __future__ import annotations


class NBSError(Exception):
    """Base class of every error raised by ``nbs``."""


class AddressError(NBSError, ValueError):
    """Text or bytes that are not a valid 20-byte chunk address."""


class ChunkError(NBSError, ValueError):
    """A chunk that cannot be stored (empty, or larger than the memtable)."""


class CorruptTableError(NBSError):
    """A table file whose bytes do not form a valid NBS table."""

    def __init__(self, table: str, reason: str) -> None:
        super().__init__(f"table {table}: {reason}")
        self.table = table
        self.reason = reason


class TableNotFoundError(NBSError):
    """A table named by a manifest is missing from storage."""

    def __init__(self, table: str, where: str) -> None:
        super().__init__(f"table {table} not found in {where}")
        self.table = table


class ManifestError(NBSError):
    """A manifest that is malformed or cannot be updated safely."""

    def __init__(self, manifest: str, reason: str) -> None:
        super().__init__(f"manifest {manifest}: {reason}")
        self.manifest = manifest
        self.reason = reason


class VersionMismatchError(ManifestError):
    """A manifest written by another NBS storage or Noms data version."""


class StoreNotFoundError(NBSError):
    """A store location that does not exist or is not usable as a store."""


class InvalidStoreNameError(NBSError, ValueError):
    """A store (namespace) name that is empty or not allowed."""


class SpecError(NBSError, ValueError):
    """A store spec string that cannot be parsed or is not supported."""


class StoreClosedError(NBSError):
    """An operation on a store after ``close()``."""

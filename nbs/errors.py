"""Typed errors of the NBS library.

Every failure the library reports is an ``NBSError``; callers can catch the
base class or a specific kind.  Go Noms panics in most of these situations
(see NBS-FORMAT.md section 12); here they are ordinary exceptions that leave
the store unchanged.
"""

from __future__ import annotations

import errno


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


class UploadError(NBSError):
    """A table upload that cannot go on: unknown (finished, discarded or from before a restart), or parts that do
    not fit together (a part sent twice, offsets that leave gaps or overlap)."""


class UploadBusyError(UploadError):
    """A part was refused for now, not for what it holds (nbsd answers ``Busy``): its upload ended, and the
    table may be sent again after a pause."""


class UploadMemoryFullError(UploadBusyError):
    """The tables this process holds in memory while they are received are at its bound (nbsd's
    ``upload_memory``)."""


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


class StoreIOError(NBSError):
    """A file operation of a local store failed: permission, disk full, I/O error, a name too long.

    ``path`` is the file or directory concerned and ``errno`` the OS error
    number; the ``OSError`` is the ``__cause__``.
    """

    def __init__(self, action: str, path: str, err: OSError) -> None:
        super().__init__(f"cannot {action} {path}: {err.strerror or err}")
        self.path = path
        self.errno = err.errno


class StoreLockedError(StoreIOError):
    """A local store's ``LOCK`` stayed held by another process for longer than a wait allows.

    ``holder`` names that process (``pid N (name)``) when the kernel's lock table shows it.
    """

    def __init__(self, path: str, waited: float, holder: str | None) -> None:
        by = f"by {holder} " if holder else ""
        super().__init__("lock", path, OSError(errno.EWOULDBLOCK, f"held {by}for over {waited:.1f} s"))
        self.waited = waited
        self.holder = holder


class StoreClosedError(NBSError):
    """An operation on a store after ``close()``."""


class TableCacheError(NBSError):
    """An on-disk table cache directory holding something other than table files."""


class StoreFullError(NBSError):
    """A write that would take an in-memory store past its byte cap (the daemon's shared ``mem`` store)."""


class AWSError(NBSError):
    """A failed AWS request.  The botocore exception is the ``__cause__``.

    ``code`` is the AWS error code (or the botocore exception name),
    ``request_id`` the id AWS support asks for, when the service sent one.
    """

    def __init__(self, action: str, code: str, message: str, request_id: str | None = None,
                 status: int | None = None) -> None:
        detail = f"{action}: {code}: {message}" if message else f"{action}: {code}"
        super().__init__(f"{detail} (request id {request_id})" if request_id else detail)
        self.action = action
        self.code = code
        self.message = message
        self.request_id = request_id
        self.status = status


class BucketNotFoundError(AWSError, StoreNotFoundError):
    """The S3 bucket that holds a store's tables does not exist."""


class DynamoTableNotFoundError(AWSError, StoreNotFoundError):
    """The DynamoDB table that holds store manifests does not exist."""


class AccessDeniedError(AWSError):
    """AWS refused the request (missing permission, or unusable credentials)."""


class TableAccessDeniedError(AccessDeniedError):
    """S3 refused to read a table.  Without ``s3:ListBucket`` S3 answers a missing object with 403, not 404,
    so the table may simply be missing; the message says so."""


class CredentialsError(AccessDeniedError):
    """No credentials, or credentials AWS does not accept (unknown key, bad signature, expired token)."""


class AWSUnavailableError(AWSError):
    """Throttling, server errors or network failures that outlasted every retry; worth retrying later."""

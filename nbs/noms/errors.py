"""Typed errors of the Noms value layer.

Everything here derives from ``NomsError`` (itself an ``nbs.NBSError``), so the
CLI can report any failure as ``error: <message>`` without a traceback.  The
messages that Go Noms prints verbatim (path syntax, spec syntax, missing
datasets) are reproduced exactly.
"""

from __future__ import annotations

from nbs.errors import NBSError, SpecError


class NomsError(NBSError):
    """Base class of every error raised by ``nbs.noms``."""


class DecodeError(NomsError, ValueError):
    """Bytes that do not form a valid Noms value or type encoding."""


class EncodeError(NomsError, ValueError):
    """A value that cannot be encoded (a NaN number, an unresolved cycle, ...)."""


class ValueNotFoundError(NomsError):
    """A chunk referenced by a value (a prolly-tree child, a ref target) is missing."""


class PathError(NomsError, ValueError):
    """A relative or absolute path that does not parse."""


class DatasetSpecError(SpecError):
    """A dataset or value spec (``<db>::<path>``) that does not parse."""


class DatasetError(NomsError):
    """An operation on a dataset that cannot be done (missing head, bad name)."""


class MergeNeededError(DatasetError):
    """A commit that does not descend from the dataset's current head (Go's ErrMergeNeeded)."""

    def __init__(self) -> None:
        super().__init__("Dataset head is not ancestor of commit")


class CommitError(NomsError):
    """A value that should be a commit but is not one."""

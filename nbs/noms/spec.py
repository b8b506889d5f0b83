"""Dataset and value specs (NOMS-VALUES.md 9.1, 9.2): ``<database>::<dataset or #hash><path>``.

The database part is parsed by ``nbs.parse_store_spec``; the spec is split at
the *last* ``::`` so database specs may contain ``::`` themselves.  Opening a
database always goes through ``open_chunk_store``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import nbs
from nbs.addr import ADDR_TEXT_SIZE, Addr
from nbs.chunk_store import ChunkStore
from nbs.noms.datas import DATASET_RE, Database
from nbs.noms.errors import DatasetSpecError, PathError
from nbs.noms.path import Path
from nbs.noms.values import Value
from nbs.spec import StoreSpec

SEPARATOR = "::"
NBSD_ENV = "NOMS_NBSD"


def open_chunk_store(db_spec: str | StoreSpec, nbsd: str | None = None) -> ChunkStore:
    """Open the chunk store a database spec names; the one place the CLI opens stores.

    With ``nbsd`` (an endpoint, or ``"default"`` for the default one), or
    ``$NOMS_NBSD`` set, the store is reached through the caching daemon instead
    of directly.  Local directories are created when missing, as Go Noms does.
    """
    nbsd = nbsd if nbsd is not None else os.environ.get(NBSD_ENV) or None
    if nbsd is None:
        return nbs.open_store(db_spec)
    import nbsclient

    return nbsclient.connect(str(db_spec), None if nbsd == "default" else nbsd)


def open_database(db_spec: str | StoreSpec, nbsd: str | None = None) -> Database:
    """The database a spec names (``/path``, ``nbs:/path``, ``mem``, ``aws://table:bucket/name``, ...).

    ``nbsd`` goes through the caching daemon, as for ``open_chunk_store``.
    """
    return Database(open_chunk_store(db_spec, nbsd))


@dataclass(frozen=True)
class AbsolutePath:
    """A dataset (meaning its head commit) or ``#hash``, followed by a relative path."""

    dataset: str = ""
    digest: Addr | None = None
    path: Path = field(default_factory=Path)

    @classmethod
    def parse(cls, text: str) -> AbsolutePath:
        if not text:
            raise PathError("Empty path")
        if text[0] == "#":
            tail = text[1:]
            if len(tail) < ADDR_TEXT_SIZE:
                raise PathError("Invalid hash: " + tail)
            digest = Addr.maybe_parse(tail[:ADDR_TEXT_SIZE])
            if digest is None:
                raise PathError("Invalid hash: " + tail[:ADDR_TEXT_SIZE])
            rest = tail[ADDR_TEXT_SIZE:]
            return cls(digest=digest, path=Path.parse(rest) if rest else Path())
        match = DATASET_RE.match(text)
        if match is None:
            raise PathError(f"Invalid dataset name: {text}")
        rest = text[match.end():]
        return cls(dataset=match.group(), path=Path.parse(rest) if rest else Path())

    def is_empty(self) -> bool:
        return not self.dataset and self.digest is None

    def resolve(self, db: Database) -> Value | None:
        """The value this path names in ``db``, or None if any step finds nothing."""
        value: Value | None
        if self.dataset:
            value = db.head(self.dataset)
        elif self.digest is not None:
            value = db.read_value(self.digest)
        else:
            return None
        return self.path.resolve(value, db.store)

    def __str__(self) -> str:
        if self.dataset:
            return self.dataset + str(self.path)
        if self.digest is not None:
            return f"#{self.digest}{self.path}"
        return ""


@dataclass(frozen=True)
class ValueSpec:
    """A parsed ``<database>::<path>`` spec (Go's ``spec.Spec`` for datasets and paths)."""

    database: StoreSpec
    path: AbsolutePath

    def pin(self, db: Database) -> ValueSpec | None:
        """The same spec rooted at ``#<head commit hash>`` instead of a dataset; None without a head."""
        if self.path.digest is not None:
            return self
        if not self.path.dataset:
            return None
        head = db.head_ref(self.path.dataset)
        if head is None:
            return None
        return ValueSpec(self.database, AbsolutePath(digest=head.target, path=self.path.path))


def split_spec(text: str) -> tuple[str, str]:
    """Split at the last ``::``."""
    index = text.rfind(SEPARATOR)
    if index < 0:
        raise DatasetSpecError(f"Missing {SEPARATOR} after database in {text}")
    return text[:index], text[index + len(SEPARATOR):]


KNOWN_PROTOCOLS = ("nbs", "aws", "mem")


def parse_database_spec(text: str) -> StoreSpec:
    """A database spec; an unknown protocol gets Go's message (which leaves the protocol out)."""
    protocol, sep, _ = text.partition(":")
    if sep and protocol not in KNOWN_PROTOCOLS:
        raise DatasetSpecError(f"Invalid database protocol  in {text}")
    return nbs.parse_store_spec(text)


def parse_dataset_spec(text: str) -> ValueSpec:
    """``<db>::<dataset>``: the path part must be a dataset name and nothing else."""
    db_text, path_text = split_spec(text)
    database = parse_database_spec(db_text)
    path = AbsolutePath.parse(path_text)
    if not path.dataset:
        raise DatasetSpecError("dataset name required for dataset spec")
    if not path.path.is_empty():
        raise DatasetSpecError("path is not allowed for dataset spec")
    return ValueSpec(database, path)


def parse_path_spec(text: str) -> ValueSpec:
    """``<db>::<absolute path>``; an empty path part is allowed (it names nothing)."""
    db_text, path_text = split_spec(text)
    path = AbsolutePath.parse(path_text) if path_text else AbsolutePath()
    return ValueSpec(parse_database_spec(db_text), path)

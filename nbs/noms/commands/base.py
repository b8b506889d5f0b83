"""What every ``noms`` subcommand shares: its streams, the spec resolver, opened databases, failures.

Go Noms reports a failure two ways: ``d.CheckErrorNoUsage`` prints
``error: <message>``; ``d.CheckError`` adds kingpin's usage line after it
(``noms: error: unexpected <command>``).  ``CommandFailed.usage`` says which
one a failure is; messages are Go's.  Every failure exits with status 1, also
where Go's ``main`` drops the status and exits 0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, NoReturn, TextIO

from nbs.chunk_store import ChunkStore
from nbs.errors import NBSError
from nbs.noms.cmdline import check_error_usage_line
from nbs.noms.config import Resolver
from nbs.noms.datas import Database
from nbs.noms.spec import ValueSpec, open_chunk_store, parse_database_spec, parse_dataset_spec, parse_path_spec
from nbs.noms.status import Status
from nbs.noms.values import Value
from nbs.spec import StoreSpec


class CommandFailed(Exception):
    """A failure to report as ``error: <message>`` (plus Go's usage line when ``usage``)."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass
class Env:
    """One ``noms`` invocation: streams, global flags and the databases it opened."""

    out: BinaryIO
    err: TextIO
    stdin: BinaryIO
    resolver: Resolver
    nbsd: str | None = None
    quiet: bool = False
    status: Status = field(init=False)
    _open: dict[str, Database] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.status = Status(self.out)

    def write(self, text: str) -> None:
        self.out.write(text.encode("utf-8", "surrogateescape"))

    @staticmethod
    def fail(message: str, usage: bool = False) -> NoReturn:
        raise CommandFailed(message, usage)

    @contextlib.contextmanager
    def checked(self, usage: bool) -> Iterator[None]:
        """Report a Noms error raised inside as a failure with or without Go's usage line."""
        try:
            yield
        except NBSError as err:
            raise CommandFailed(str(err), usage) from err

    # -- databases -------------------------------------------------------------------------------

    def database(self, spec: StoreSpec) -> Database:
        """The database ``spec`` names, opened once per invocation (sync within one store reuses it)."""
        key = str(spec)
        db = self._open.get(key)
        if db is None:
            db = Database(open_chunk_store(spec, self.nbsd))
            self._open[key] = db
        return db

    def open_database(self, text: str, usage: bool) -> Database:
        with self.checked(usage):
            return self.database(parse_database_spec(self.resolver.db_spec(text)))

    def open_dataset(self, text: str, usage: bool) -> tuple[Database, str]:
        """``<db>::<dataset>``: the database and the dataset name."""
        with self.checked(usage):
            spec = parse_dataset_spec(self.resolver.path_spec(text))
            return self.database(spec.database), spec.path.dataset

    def open_path(self, text: str, usage: bool) -> tuple[Database, ValueSpec, Value | None]:
        """``<db>::<path>``: the database, the parsed spec and the value (None if nothing is there)."""
        with self.checked(usage):
            spec = parse_path_spec(self.resolver.path_spec(text))
            db = self.database(spec.database)
            return db, spec, spec.path.resolve(db)

    def chunk_store(self, text: str, usage: bool) -> ChunkStore:
        return self.open_database(text, usage).cs

    def close(self) -> None:
        for db in self._open.values():
            db.close()
        self._open.clear()


def report(err: TextIO, failure: CommandFailed, argv: Sequence[str]) -> int:
    err.write(f"error: {failure}\n")
    if failure.usage:
        err.write(check_error_usage_line(argv))
    return 1

"""The ``noms`` command: ``ds``, ``root``, ``show``, ``log`` and ``version`` (NOMS-VALUES.md 10).

Output matches Go Noms byte for byte.  Failures print ``error: <message>`` to
stderr and exit with status 1, never a traceback.  Every command opens its
database through ``nbs.noms.spec.open_chunk_store``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import sys
from collections.abc import Iterator, Sequence
from typing import BinaryIO, NoReturn, TextIO

from nbs.errors import NBSError
from nbs.manifest import NOMS_VERSION
from nbs.noms.datas import Database, is_commit
from nbs.noms.errors import DatasetError
from nbs.noms.log import DEFAULT_PATH, LogOptions, LogPrinter, iter_commits
from nbs.noms.path import Path
from nbs.noms.printer import datetime_commenter, encoded_value
from nbs.noms.spec import open_chunk_store, parse_database_spec, parse_dataset_spec, parse_path_spec
from nbs.noms.values import String
from nbs.spec import StoreSpec


class UsageError(Exception):
    """Bad command-line usage (reported like any other error)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _time_zone(name: str) -> datetime.tzinfo | None:
    return datetime.timezone.utc if name == "utc" else None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="noms", description="Noms database command line (Python port of Go Noms 7.18).")
    parser.add_argument("--nbsd", metavar="ENDPOINT", default=None,
                        help="go through the nbsd caching daemon at ENDPOINT ('default' for the default "
                             "endpoint); $NOMS_NBSD does the same")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ds = commands.add_parser("ds", help="list datasets, or delete one with -d")
    ds.add_argument("-d", "--delete", action="store_true", help="delete a dataset")
    ds.add_argument("name", nargs="?", default="", help="database to list, or <db>::<dataset> to delete")

    root = commands.add_parser("root", help="print the root hash of a database")
    root.add_argument("database", help="database spec")

    show = commands.add_parser("show", help="print a value")
    show.add_argument("--raw", action="store_true", help="dump the value in binary format")
    show.add_argument("--tz", choices=("local", "utc"), default="local",
                      help="time zone of formatted date comments")
    show.add_argument("path", help="<db>::<dataset or #hash><path>")

    log = commands.add_parser("log", help="list the history of a path")
    log.add_argument("--color", type=int, default=-1, help="1 to force color on, 0 to force it off")
    log.add_argument("--max-lines", type=int, default=9,
                     help="max lines per commit (-1 for all, 0 for only the header)")
    log.add_argument("-n", "--max-commits", type=int, default=0, help="max commits to show (0 for all)")
    log.add_argument("--oneline", action="store_true", help="one line per commit")
    log.add_argument("--graph", action="store_true", help="draw the commit graph on the left")
    log.add_argument("--show-value", action="store_true", help="show values instead of diffs")
    log.add_argument("--tz", choices=("local", "utc"), default="local",
                     help="time zone of formatted dates")
    log.add_argument("path", help="<db>::<dataset or #hash><path>")

    commands.add_parser("version", help="print the Noms data format version")
    return parser


class _Command:
    """One invocation: parsed arguments and the output streams."""

    def __init__(self, args: argparse.Namespace, out: BinaryIO, err: TextIO) -> None:
        self.args = args
        self.out = out
        self.err = err

    def run(self) -> int:
        command: str = self.args.command
        return int(getattr(self, "cmd_" + command)())

    def cmd_version(self) -> int:
        self.out.write(f"format version: {NOMS_VERSION}\nbuilt from <developer build>\n".encode())
        return 0

    def cmd_root(self) -> int:
        with _database(parse_database_spec(self.args.database), self.args.nbsd) as db:
            self.out.write(f"{db.root()}\n".encode())
        return 0

    def cmd_ds(self) -> int:
        name: str = self.args.name
        if self.args.delete:
            spec = parse_dataset_spec(name)
            with _database(spec.database, self.args.nbsd) as db:
                old = db.delete(spec.path.dataset)
            self.out.write(f"Deleted {name} (was #{old.target})\n".encode())
            return 0
        with _database(parse_database_spec(name), self.args.nbsd) as db:
            for key, _ in db.datasets():
                self.out.write((key.value if isinstance(key, String) else key.encoding()) + b"\n")
        return 0

    def cmd_show(self) -> int:
        spec = parse_path_spec(self.args.path)
        with _database(spec.database, self.args.nbsd) as db:
            value = spec.path.resolve(db)
            if value is None:
                self.err.write(f"Value not found: {self.args.path}\n")
                return 0
            if self.args.raw:
                self.out.write(value.encoding())
            else:
                text = encoded_value(value, commenter=datetime_commenter(_time_zone(self.args.tz)))
                self.out.write(text.encode("utf-8", "surrogateescape") + b"\n")
        return 0

    def cmd_log(self) -> int:
        args = self.args
        spec = parse_path_spec(args.path)
        with _database(spec.database, self.args.nbsd) as db:
            pinned = spec.pin(db)
            if pinned is None or pinned.path.digest is None:
                self.err.write(f"Cannot resolve spec: {args.path}\n")
                return 1
            path = pinned.path.path if not pinned.path.path.is_empty() else Path.parse(DEFAULT_PATH)
            start = db.read_value(pinned.path.digest)
            if not is_commit(start):
                raise DatasetError(f"{path} does not reference a Commit object")
            use_color = args.color == 1 if args.color in (0, 1) else _isatty(self.out)
            opts = LogOptions(use_color=use_color, max_lines=args.max_lines, max_commits=args.max_commits,
                              oneline=args.oneline, show_graph=args.graph, show_value=args.show_value,
                              tz=_time_zone(args.tz))
            printer = LogPrinter(db, path, opts)
            limit = opts.max_commits if opts.max_commits > 0 else None
            for shown, node in enumerate(iter_commits(db, start)):
                if limit is not None and shown >= limit:
                    break
                self.out.write(printer.format_commit(node).encode("utf-8", "surrogateescape"))
        return 0


@contextlib.contextmanager
def _database(spec: StoreSpec, nbsd: str | None) -> Iterator[Database]:
    """The database a spec names, opened through ``open_chunk_store`` and closed afterwards."""
    cs = open_chunk_store(spec, nbsd)
    try:
        yield Database(cs)
    finally:
        cs.close()


def _isatty(stream: BinaryIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def _silence_stdout(out: BinaryIO) -> None:
    """After the reader of our output went away, send the rest (interpreter-exit flushes) nowhere."""
    if out is getattr(sys.stdout, "buffer", None):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def main(argv: Sequence[str] | None = None, stdout: BinaryIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the ``noms`` command; returns the exit status."""
    out = stdout if stdout is not None else sys.stdout.buffer
    err = stderr if stderr is not None else sys.stderr
    try:
        args = build_parser().parse_args(argv)
        return _Command(args, out, err).run()
    except UsageError as e:
        err.write(f"error: {e}\n")
        return 1
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except BrokenPipeError:
        _silence_stdout(out)
        return 1
    except (NBSError, OSError) as e:
        err.write(f"error: {e}\n")
        return 1
    finally:
        try:
            out.flush()
        except (OSError, ValueError):
            pass


if __name__ == "__main__":
    sys.exit(main())

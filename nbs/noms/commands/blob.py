"""``noms blob put FILE [DB]`` and ``noms blob export PATH [FILE]``.

``put`` stores the file as a Blob (its hash is the same whatever
``--concurrency``) and prints ``#<hash>``.  Go stores the *empty* blob for any
file under 1 MiB and crashes on ``--concurrency 0``; here every file is stored
whole and a concurrency below 1 is an error.  ``export`` writes the blob to
stdout or to FILE, which it truncates first (Go overwrites in place and leaves
the tail of a longer old file); writing to a file shows Go's progress line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from nbs.noms.chunker import new_blob
from nbs.noms.cmdline import Arg, Command, Flag, Values
from nbs.noms.commands.base import CommandFailed, Env
from nbs.noms.humanize import si_bytes
from nbs.noms.printer import BLOB_PIECE
from nbs.noms.values import Blob

READ_SIZE = 1 << 20


def command() -> Command:
    return Command("blob", "Interact with blobs.", commands=[
        Command("put", "imports a blob to a dataset", flags=[
            Flag("concurrency", "number of concurrent HTTP calls to retrieve remote resources", "int",
                 str(os.cpu_count() or 1))],
                args=[Arg("file", "a file to import", required=True), Arg("dbSpec", "the database to import into")],
                run=run_put),
        Command("export", "exports a blob from a dataset", args=[
            Arg("dataset", "the dataset to export", required=True),
            Arg("file", "an optional file to save the blob to")], run=run_export),
    ])


def _read_pieces(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while piece := f.read(READ_SIZE):
            yield piece


def run_put(env: Env, values: Values) -> int:
    path = str(values["file"])
    if not os.path.exists(path):
        env.fail("couldn't stat file", usage=True)
    concurrency = values["concurrency"]
    assert isinstance(concurrency, int)
    if concurrency < 1:
        env.fail(f"--concurrency must be at least 1, not {concurrency}")
    try:
        db = env.open_database(str(values["dbSpec"]), usage=False)
    except CommandFailed as err:  # Go prints this one without "error: "
        env.err.write(f"Could not open database: {err}\n")
        return 1
    with env.checked(usage=False):
        ref = db.store.write_value(new_blob(db.store, _read_pieces(path)))
        db.flush()
    env.write(f"#{ref.target}\n")
    return 0


def run_export(env: Env, values: Values) -> int:
    spec, path = str(values["dataset"]), str(values["file"])
    _, _, blob = env.open_path(spec, usage=False)
    if blob is None:
        env.fail(f"No value at {spec}")
    if not isinstance(blob, Blob):
        env.fail(f"Value at {spec} is not a blob")
    with env.checked(usage=False):
        if not path:
            for piece in blob.iter_pieces():
                env.out.write(piece)
            return 0
        _export_to_file(env, blob, path)
    return 0


def _export_to_file(env: Env, blob: Blob, path: str) -> None:
    """Copy the blob into ``path`` in Go's 32 KiB steps, repainting the progress line as Go does."""
    start = time.monotonic()
    expected = si_bytes(blob.length())
    seen = 0

    def progress() -> None:
        elapsed = time.monotonic() - start
        rate = int(seen / elapsed) if elapsed > 0 else 0
        env.status.printf(f"{si_bytes(seen)} of {expected} written in {int(elapsed)}s ({si_bytes(rate)}/s)...")

    with open(path, "wb") as f:
        pending = b""
        for data in blob.iter_pieces():
            pending += data
            while len(pending) >= BLOB_PIECE:
                f.write(pending[:BLOB_PIECE])
                seen += BLOB_PIECE
                pending = pending[BLOB_PIECE:]
                progress()
        if pending:
            f.write(pending)
            seen += len(pending)
            progress()
    progress()
    env.status.done()

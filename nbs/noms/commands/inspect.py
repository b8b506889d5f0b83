"""``noms ds``, ``noms show`` and ``noms log``: reading datasets, values and history."""

from __future__ import annotations

import datetime
import os
from typing import BinaryIO

from nbs.noms.cmdline import Arg, Command, Flag, Values
from nbs.noms.commands.base import Env
from nbs.noms.datas import is_commit
from nbs.noms.log import DEFAULT_PATH, LogOptions, LogPrinter, iter_commits
from nbs.noms.path import Path
from nbs.noms.printer import datetime_commenter, encoded_value
from nbs.noms.spec import parse_path_spec
from nbs.noms.value_stats import value_stats
from nbs.noms.values import String

NO_PAGER = Flag("no-pager", "suppress paging functionality", "bool")
SPELLING = "see Spelling Objects at https://github.com/attic-labs/noms/blob/master/doc/spelling.md"


def ds_command() -> Command:
    return Command("ds", "Dataset management.", flags=[Flag("delete", "delete a dataset", "bool", short="d")],
                   args=[Arg("name", f"name of the database to list or dataset to delete - {SPELLING}")], run=run_ds)


def show_command() -> Command:
    return Command("show", "Shows a serialization of a Noms object.", flags=[
        Flag("raw", "dumps the raw binary version of the data", "bool"),
        Flag("stats", "reports statistics related to the value", "bool"),
        Flag("tz", "display formatted date comments in specified timezone, must be: local or utc", default="local"),
        NO_PAGER,
    ], args=[Arg("object", f"a noms object - {SPELLING}", required=True)], run=run_show)


def log_command() -> Command:
    return Command("log", "Lists the history of changes to a path.", flags=[
        Flag("color", "set to 1 to force color on, 0 to force off", "int", "-1"),
        Flag("max-lines", "max number of lines to show per commit (-1 for all lines)", "int", "9"),
        Flag("max-commits", "max number of commits to display (0 for all commits)", "int", "0", short="n"),
        Flag("oneline", "show a summary of each commit on a single line", "bool"),
        Flag("graph", "show ascii-based commit hierarchy on left side of output", "bool"),
        Flag("show-value", "show commit value rather than diff information", "bool"),
        Flag("tz", "display formatted date comments in specified timezone, must be: local or utc", default="local"),
        NO_PAGER,
    ], args=[Arg("value", "dataset or value to display history for", required=True)], run=run_log)


def _time_zone(name: object) -> datetime.tzinfo | None:
    return datetime.UTC if name == "utc" else None


def run_ds(env: Env, values: Values) -> int:
    name = str(values["name"])
    if values["delete"]:
        db, dataset = env.open_dataset(name, usage=True)
        with env.checked(usage=True):
            old = db.delete(dataset)
        env.write(f"Deleted {name} (was #{old.target})\n")
        return 0
    db = env.open_database(name, usage=True)
    with env.checked(usage=False):
        for key, _ in db.datasets():
            env.out.write((key.value if isinstance(key, String) else key.encoding()) + b"\n")
    return 0


def run_show(env: Env, values: Values) -> int:
    text = str(values["object"])
    _, _, value = env.open_path(text, usage=False)
    if value is None:
        env.err.write(f"Value not found: {text}\n")
        return 1
    if values["raw"] and values["stats"]:
        env.err.write("--raw and --stats are mutually exclusive\n")
        return 1
    with env.checked(usage=False):
        if values["raw"]:
            env.out.write(value.encoding())
        elif values["stats"]:
            env.write(value_stats(value))
        else:
            env.write(encoded_value(value, commenter=datetime_commenter(_time_zone(values["tz"]))) + "\n")
    return 0


def run_log(env: Env, values: Values) -> int:
    text = str(values["value"])
    with env.checked(usage=False):
        spec = parse_path_spec(env.resolver.path_spec(text))
        db = env.database(spec.database)
        pinned = spec.pin(db)
    if pinned is None or pinned.path.digest is None:
        env.err.write(f"Cannot resolve spec: {text}\n")
        return 1
    path = pinned.path.path if not pinned.path.path.is_empty() else Path.parse(DEFAULT_PATH)
    with env.checked(usage=False):
        start = db.read_value(pinned.path.digest)
    if not is_commit(start):
        env.fail(f"{path} does not reference a Commit object", usage=True)
    color = values["color"]
    opts = LogOptions(use_color=color == 1 if color in (0, 1) else _isatty(env.out),
                      max_lines=int(str(values["max-lines"])), max_commits=int(str(values["max-commits"])),
                      oneline=bool(values["oneline"]), show_graph=bool(values["graph"]),
                      show_value=bool(values["show-value"]), tz=_time_zone(values["tz"]))
    printer = LogPrinter(db, path, opts)
    limit = opts.max_commits if opts.max_commits > 0 else None
    with env.checked(usage=False):
        for shown, node in enumerate(iter_commits(db, start)):
            if limit is not None and shown >= limit:
                break
            env.write(printer.format_commit(node))
    return 0


def _isatty(stream: BinaryIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False

"""``noms root [--update HASH]`` and ``noms stats``: the store's root pointer and its size.

``root --update`` replaces the whole database with the datasets map at
HASH after a confirmation read from stdin (``y``/``Y``).  Go accepts a map
when *any* of its values points at a commit (and refuses an empty map
silently); here every value must point at a commit, and an empty map is a
valid, empty database.  A hash that is not in the store is an error, where Go
crashes.
"""

from __future__ import annotations

from nbs.addr import Addr
from nbs.noms.cmdline import Arg, Command, Flag, Values
from nbs.noms.commands.base import Env
from nbs.noms.datas import Database, is_commit
from nbs.noms.printer import describe_type
from nbs.noms.types import STRING_TYPE, VALUE_TYPE, make_map_type, make_ref_type
from nbs.noms.values import Map, Ref, String, Value

WARNING = """\U0001f480\u26a0\ufe0f\U0001f631 WARNING \U0001f631\u26a0\ufe0f\U0001f480

This operation replaces the entire database with the value of the given
hash. The old database becomes eligible for GC.

ANYTHING NOT SAVED WILL BE LOST

Continue?
"""
ROOT_TYPE = describe_type(make_map_type(STRING_TYPE, make_ref_type(VALUE_TYPE)))


def command() -> Command:
    return Command("root", "Manage the root hash of the entire database.",
                   flags=[Flag("update", "replaces the database root hash")],
                   args=[Arg("db", "database to work with", required=True)], run=run_root)


def stats_command() -> Command:
    return Command("stats", "Shows stats summary for a Noms Database.",
                   args=[Arg("database", "the database to summarize", required=True)], run=run_stats)


def run_stats(env: Env, values: Values) -> int:
    cs = env.chunk_store(str(values["database"]), usage=True)
    summary = getattr(cs, "stats_summary", None)
    if summary is None:
        env.fail("stats are only available for a store opened directly (not through nbsd)")
    env.write(f"{summary()}\n")
    return 0


def run_root(env: Env, values: Values) -> int:
    db = env.open_database(str(values["db"]), usage=False)
    current = db.cs.root()
    update = str(values["update"])
    if not update:
        env.write(f"{current}\n")
        return 0
    target = Addr.maybe_parse(update[1:] if update.startswith("#") else update)
    if target is None:
        env.err.write(f"Invalid hash: {Addr(bytes(20))}\n")
        return 1
    with env.checked(usage=False):
        root = db.read_value(target)
    if root is None:
        env.fail(f"Value not found: #{target}")
    if not _valid_root(env, db, root):
        return 1
    env.write(WARNING)
    env.out.flush()
    answer = _scan_line(env)
    if answer.lower() != "y":
        return 0
    with env.checked(usage=False):
        if not db.cs.commit(target, current):
            env.err.write("Optimistic concurrency failure\n")
            return 1
    env.write(f"Success. Previous root was: {current}\n")
    return 0


def _valid_root(env: Env, db: Database, root: Value) -> bool:
    if not isinstance(root, Map) or not all(isinstance(k, String) and isinstance(v, Ref) for k, v in root):
        env.err.write(f"Root of database must be {ROOT_TYPE}, but you specified: {describe_type(root.type_of())}\n")
        return False
    for key, ref in root:
        assert isinstance(key, String) and isinstance(ref, Ref)
        with env.checked(usage=False):
            target = db.read_value(ref.target)
        if not is_commit(target):
            env.err.write(f"Invalid root map. Value for key '{key.text}' is not a ref of commit.\n")
            return False
    return True


def _scan_line(env: Env) -> str:
    """Go's ``fmt.Scanln(&s)``: one word on a line; EOF and empty or crowded lines are errors."""
    line = env.stdin.readline().decode("utf-8", "surrogateescape")
    if not line:
        env.fail("EOF")
    words = line.split()
    if not words:
        env.fail("unexpected newline")
    if len(words) > 1:
        env.fail("expected newline")
    return words[0]

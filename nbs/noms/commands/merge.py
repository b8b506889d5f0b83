"""``noms merge [--policy n|l|r|p] DB LEFT RIGHT``: a merge commit of two datasets' heads.

The heads' values are merged three ways against their closest common
ancestor; the merge commit (empty meta, both heads as parents) is written and
its hash printed, without moving any dataset.  ``--policy`` settles
conflicts: ``n`` none (fail), ``l`` left, ``r`` right, ``p`` ask on stdin.
Progress goes to the status line unless the global ``-q`` is given.
"""

from __future__ import annotations

from nbs.noms.cmdline import Arg, Command, Flag, Values
from nbs.noms.commands.base import Env
from nbs.noms.datas import DATASET_RE, VALUE_FIELD
from nbs.noms.diff import Change
from nbs.noms.merge import ResolveFunc, ours, theirs, three_way
from nbs.noms.number_format import format_g
from nbs.noms.path import Path
from nbs.noms.values import Bool, Number, String, Struct, Value


def command() -> Command:
    return Command("merge", "Merges and commits the head values of two named datasets", flags=[
        Flag("policy", "conflict resolution policy for merging: n (none), l (left), r (right) or p (prompt)",
             default="n"),
    ], args=[Arg("database", "a noms database", required=True),
             Arg("left-dataset-name", "a dataset", required=True),
             Arg("right-dataset-name", "a dataset", required=True)], run=run_merge)


def _plain(v: Value | None) -> str | None:
    """Go's ``%v`` of a primitive value; None for anything else."""
    if isinstance(v, Bool):
        return "true" if v.value else "false"
    if isinstance(v, Number):
        return format_g(v.value)
    if isinstance(v, String):
        return v.text
    return None


def _prompt(env: Env) -> ResolveFunc:
    def resolve(a_change: Change, b_change: Change, a: Value | None, b: Value | None,
                path: Path) -> tuple[Change, Value | None] | None:
        left, right = _plain(a), _plain(b)
        if left is None or right is None:
            return None
        env.write(f"\nConflict at: {path}\nLeft:  {left}\nRight: {right}\n\n")
        while True:
            env.write("Enter 'l' to accept the left value, 'r' to accept the right value\n")
            env.out.flush()
            line = env.stdin.readline().decode("utf-8", "replace")
            if not line:
                env.fail("unexpected EOF")
            choice = line.rstrip("\n")
            if choice in ("l", "L"):
                return a_change, a
            if choice in ("r", "R"):
                return b_change, b
    return resolve


def run_merge(env: Env, values: Values) -> int:
    db = env.open_database(str(values["database"]), usage=True)
    names = [str(values["left-dataset-name"]), str(values["right-dataset-name"])]
    for name in names:
        if not DATASET_RE.fullmatch(name):
            env.fail(f"Invalid dataset {name}, must match {DATASET_RE.pattern}")
    with env.checked(usage=False):
        heads = [db.head(name) for name in names]
        for name, head in zip(names, heads):
            if head is None:
                env.fail(f"Dataset {name} has no data")
        left, right = [head for head in heads if head is not None]
        ancestor_ref = db.common_ancestor(left.ref_to(), right.ref_to())
        if ancestor_ref is None:
            env.fail(f"Datasets {names[0]} and {names[1]} have no common ancestor")
        ancestor = db.read_commit(ancestor_ref.target)
    policy = str(values["policy"])
    resolvers: dict[str, ResolveFunc | None] = {"n": None, "l": ours, "r": theirs}
    if policy.lower() not in ("n", "l", "r", "p"):
        env.fail(f"Unsupported merge policy: {policy}. Choices are n, l, r and a.")
    resolve = _prompt(env) if policy.lower() == "p" else resolvers[policy.lower()]
    count = 0

    def progress() -> None:
        nonlocal count
        count += 1
        if not env.quiet:
            env.status.printf(f"Applied {count} changes...")

    with env.checked(usage=False):
        merged = three_way(left.get(VALUE_FIELD), right.get(VALUE_FIELD), ancestor.get(VALUE_FIELD), db.store,
                           resolve, progress)
        assert merged is not None
        commit = db.new_commit(merged, [left.ref_to(), right.ref_to()], Struct("", []))
        ref = db.store.write_value(commit)
        db.flush()
    env.write(f"{ref.target}\n")
    return 0

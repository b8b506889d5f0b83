"""``noms commit [--allow-dupe] [--message M] [--date D] ABSOLUTE-PATH DATASET``.

The value (``#hash[path]`` or ``dataset[path]`` in the dataset's database) is
committed with ``struct Meta {date, message?}``; committing the head's own
value again needs ``--allow-dupe``.  A value that is not there is an error
(Go crashes).
"""

from __future__ import annotations

from nbs.noms.cmdline import Arg, Command, Flag, Values
from nbs.noms.commands.base import Env
from nbs.noms.meta import new_meta
from nbs.noms.spec import AbsolutePath

DUPLICATE = "Commit aborted - allow-dupe is set to off and this commit would create a duplicate\n"


def command() -> Command:
    return Command("commit", "Commits a value to a dataset.", flags=[
        Flag("allow-dupe", "creates a new commit, even if it would be identical (modulo metadata and parents) "
                           "to the existing HEAD", "bool"),
        Flag("message", "commit message"),
        Flag("date", "commit date formatted as 2019-08-08T21:52:46Z - defaults to current date"),
    ], args=[Arg("absolute-path", "absolute path to value to commit", required=True),
             Arg("dataset", "dataset spec to commit to", required=True)], run=run_commit)


def run_commit(env: Env, values: Values) -> int:
    db, dataset = env.open_dataset(str(values["dataset"]), usage=True)
    text = str(values["absolute-path"])
    with env.checked(usage=True):
        path = AbsolutePath.parse(text)
    with env.checked(usage=False):
        value = path.resolve(db)
    if value is None:
        env.fail(f"Error resolving value: {text}")
    with env.checked(usage=False):
        old = db.head_ref(dataset)
        if old is not None and not values["allow-dupe"]:
            head = db.read_commit(old.target).get("value")
            if head is not None and head.hash() == value.hash():
                env.write(DUPLICATE)
                return 0
        meta = new_meta(str(values["date"]), str(values["message"]))
        commit = db.commit(dataset, value, meta)
    was = f" (was #{old.target})" if old is not None else ""
    env.write(f"New head #{commit.hash()}{was}\n")
    return 0

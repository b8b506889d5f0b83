"""``noms sync SOURCE-OBJECT DEST-DATASET``: copy a commit and its history to a dataset, in any store.

Only the chunks the destination lacks are copied (``nbs.noms.pull``); the
dataset is then fast-forwarded, or, when the source does not descend from its
head, pointed at the source anyway ("Abandoning ...").  The messages are Go's,
including "already up to date" after a fast-forward that needed no chunks.
A source that is not a commit is an error before anything is copied (Go
copies, then crashes).  ``--parallelism`` is accepted for compatibility;
copying runs in batches here.
"""

from __future__ import annotations

import math
import time

from nbs.noms.cmdline import Arg, Command, Flag, Values
from nbs.noms.commands.base import Env
from nbs.noms.datas import is_commit
from nbs.noms.errors import MergeNeededError
from nbs.noms.humanize import si_bytes
from nbs.noms.pull import PullProgress, pull


def command() -> Command:
    return Command("sync", "Moves datasets between or within databases", flags=[
        Flag("parallelism", "parallelism (accepted for compatibility)", "int", "512", short="p"),
    ], args=[Arg("source-object", "the object to sync", required=True),
             Arg("dest-dataset", "the dataset to sync to", required=True)], run=run_sync)


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String`` for a duration rounded to 10 ms (``0s``, ``10ms``, ``1.5s``, ``2m3.4s``)."""
    centis = round(seconds * 100)
    if centis == 0:
        return "0s"
    if centis < 100:
        return f"{centis * 10}ms"
    minutes, rest = divmod(centis, 6000)
    hours, minutes = divmod(minutes, 60)
    secs = f"{rest // 100}.{rest % 100:02d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    return f"{minutes}m{secs}" if minutes else secs


def _rate(written: int, start: float) -> str:
    elapsed = time.monotonic() - start
    return si_bytes(int(written / elapsed)) if elapsed > 0 and math.isfinite(written / elapsed) else si_bytes(0)


def run_sync(env: Env, values: Values) -> int:
    source_text, dest_text = str(values["source-object"]), str(values["dest-dataset"])
    source_db, _, source = env.open_path(source_text, usage=True)
    if source is None:
        env.fail(f"Object not found: {source_text}")
    sink_db, dataset = env.open_dataset(dest_text, usage=True)
    if not is_commit(source):
        env.fail(f"{source_text} is not a commit")
    start = time.monotonic()
    last = PullProgress()

    def progress(info: PullProgress) -> None:
        nonlocal last
        last = info
        if info.known != 1 and env.status.will_print():
            env.status.printf(f"Syncing - {100 * info.done / info.known:.2f}% ({_rate(info.written_bytes, start)}/s)")

    source_ref = source.ref_to()
    with env.checked(usage=False):
        sink_ref = sink_db.head_ref(dataset)
        pull(source_db.cs, sink_db.cs, source_ref.target, progress)
        abandoned = False
        try:
            sink_db.fast_forward(dataset, source_ref)
        except MergeNeededError:
            sink_db.set_head(dataset, source_ref)
            abandoned = True
    if last.done > 0:
        elapsed = go_duration(round(time.monotonic(), 2) - round(start, 2))
        env.status.printf(f"Done - Synced {si_bytes(last.written_bytes)} in {elapsed} "
                          f"({_rate(last.written_bytes, start)}/s)")
        env.status.done()
    elif sink_ref is None:
        env.write(f"All chunks already exist at destination! Created new dataset {dest_text}.\n")
    elif abandoned and sink_ref.target != source_ref.target:
        env.write(f"Abandoning {sink_ref.target}; new head is {source_ref.target}\n")
    else:
        env.write(f"Dataset {dest_text} is already up to date.\n")
    return 0

"""``noms diff --stat``: counts of insertions, deletions and changes (Go's ``diff.Summary``).

Progress is reported through the status line as the differences come in and
once more at the end, so a quick diff shows the starting zero counts and then
the final counts, as Go does.  Two commits are compared by their values.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from nbs.noms.datas import VALUE_FIELD, is_commit
from nbs.noms.diff import Change, list_splices, should_descend, value_changes
from nbs.noms.humanize import comma
from nbs.noms.kind import Kind
from nbs.noms.status import Status
from nbs.noms.values import List, Struct, Value


@dataclass
class Progress:
    adds: int = 0
    removes: int = 0
    changes: int = 0
    new_size: int = 0
    old_size: int = 0

    def add(self, other: Progress) -> None:
        self.adds += other.adds
        self.removes += other.removes
        self.changes += other.changes
        self.new_size += other.new_size
        self.old_size += other.old_size


def _events(v1: Value, v2: Value) -> Iterator[Progress]:
    if v1 == v2:
        return
    if not should_descend(v1, v2):
        yield Progress(adds=1, removes=1, new_size=1, old_size=1)
        return
    if isinstance(v1, List) and isinstance(v2, List):
        yield Progress(old_size=v1.length(), new_size=v2.length())
        for splice in list_splices(v1, v2):
            if splice.removed == splice.added:
                yield Progress(changes=splice.removed)
            else:
                yield Progress(adds=splice.added, removes=splice.removed)
        return
    yield Progress(old_size=_size(v1), new_size=_size(v2))
    for change in value_changes(v1, v2):
        yield Progress(adds=int(change.change is Change.ADDED), removes=int(change.change is Change.REMOVED),
                       changes=int(change.change is Change.MODIFIED))


def _size(v: Value) -> int:
    if isinstance(v, Struct):
        return len(v.fields)
    length = getattr(v, "length", None)  # collections and blobs; mypy knows only Value
    assert callable(length)
    return int(length())


def _percent(part: int, whole: int) -> str:
    """Go's ``%.2f`` of ``100*part/whole`` as float64: NaN for 0/0, +Inf for n/0."""
    if whole == 0:
        return "NaN" if part == 0 else "+Inf"
    value = 100 * part / whole
    return f"{value:.2f}" if math.isfinite(value) else "+Inf"


def _plural(n: int, singular: str, plural: str) -> str:
    return f"{comma(n)} {singular if n == 1 else plural}"


def _line(acc: Progress, singular: str, plural: str) -> str:
    return (f"{_plural(acc.adds, 'insertion', 'insertions')} ({_percent(acc.adds, acc.old_size)}%), "
            f"{_plural(acc.removes, 'deletion', 'deletions')} ({_percent(acc.removes, acc.old_size)}%), "
            f"{_plural(acc.changes, 'change', 'changes')} ({_percent(acc.changes, acc.old_size)}%), "
            f"({_plural(acc.old_size, singular, plural)} vs {_plural(acc.new_size, singular, plural)})")


def summary(status: Status, v1: Value, v2: Value) -> None:
    """Print the summary of the difference from ``v1`` to ``v2`` on ``status``'s stream."""
    if is_commit(v1) and is_commit(v2):
        status.out.write(b"Comparing commit values\n")
        v1, v2 = v1.get(VALUE_FIELD) or v1, v2.get(VALUE_FIELD) or v2
    singular = plural = ""
    if v1.kind == v2.kind:
        singular, plural = {Kind.STRUCT: ("field", "fields"), Kind.MAP: ("entry", "entries")}.get(
            v1.kind, ("value", "values"))
    acc = Progress()
    for event in _events(v1, v2):
        acc.add(event)
        if status.will_print():
            status.printf(_line(acc, singular, plural))
    status.printf(_line(acc, singular, plural))
    status.done()

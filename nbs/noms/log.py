"""``noms log``: commit history with graph, meta, value or diff lines (NOMS-VALUES.md 10.5).

``CommitIterator`` orders commits as Go does: always the branch whose commit
ref is highest, with branches that reach the same commit folded together.
``format_commit`` renders one commit through the same writer chain as Go
(graph prefixes -> line limit -> buffer), so truncation and the ``...`` line
come out byte-identical.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field

from nbs.noms.datas import META_FIELD, Database, commit_parents
from nbs.noms.diff import print_diff
from nbs.noms.path import Path
from nbs.noms.printer import Commenter, datetime_commenter, format_rfc3339, write_encoded_value
from nbs.noms.types import NUMBER_TYPE, StructField, encode_type, make_struct_type
from nbs.noms.values import Number, Ref, Struct
from nbs.noms.writers import BufferWriter, MaxLineWriter, PrefixWriter, TextWriter

COLOR_START = "\x1b[0;91m"  # mgutz/ansi "red+h"
COLOR_RESET = "\x1b[0m"
DEFAULT_PATH = ".value"
_DATETIME_TYPE = encode_type(make_struct_type("DateTime", [StructField("secSinceEpoch", NUMBER_TYPE)]))


@dataclass
class LogOptions:
    use_color: bool = False
    max_lines: int = 9
    max_commits: int = 0
    oneline: bool = False
    show_graph: bool = False
    show_value: bool = False
    tz: datetime.tzinfo | None = None  # None = local time


@dataclass
class _Branch:
    ref: Ref
    commit: Struct


@dataclass
class LogNode:
    """One commit to print, with the branch layout before and after it (for the graph)."""

    ref: Ref
    commit: Struct
    start_cols: int
    end_cols: int
    col: int
    new_cols: list[int] = field(default_factory=list)
    folded_cols: list[int] = field(default_factory=list)
    last: bool = False

    @property
    def expanding(self) -> bool:
        return self.start_cols < self.end_cols

    @property
    def shrinking(self) -> bool:
        return len(self.folded_cols) > 1

    @property
    def shrunk(self) -> bool:
        return self.start_cols > self.end_cols


def _highest(branches: list[_Branch]) -> list[int]:
    """Indexes of the highest branch and of later branches at the very same commit."""
    best: Ref | None = None
    cols: list[int] = []
    for i, b in enumerate(branches):
        if best is None or b.ref.height > best.height:
            best, cols = b.ref, [i]
        elif b.ref.height == best.height and b.ref == best:
            cols.append(i)
    return cols


def iter_commits(db: Database, start: Struct) -> Iterator[LogNode]:
    """Commits from ``start`` back through all its ancestors, in Go's log order."""
    branches = [_Branch(start.ref_to(), start)]
    while branches:
        start_cols = len(branches)
        indexes = _highest(branches)
        col = indexes[0]
        branch = branches[col]
        for i in reversed(indexes[1:]):
            del branches[i]
        parents = commit_parents(branch.commit)
        branches[col:col + 1] = [_Branch(p, db.read_commit(p.target)) for p in parents]
        yield LogNode(branch.ref, branch.commit, start_cols, len(branches), col,
                      [col + i for i in range(1, len(parents))], _highest(branches), not branches)


def graph_prefix(node: LogNode, line: int, opts: LogOptions) -> str:
    """The ``| * \\ /`` columns drawn left of line ``line`` of a commit."""
    if not opts.show_graph:
        return ""
    count = min(node.start_cols, node.end_cols) if node.shrunk else max(node.start_cols, node.end_cols)
    buf = list("| " * max(count, 1))
    if line == 0:
        if node.expanding:
            buf[(count - 1) * 2] = " "
        buf[node.col * 2] = "*"
        return "".join(buf)
    if node.expanding and line == 1:
        for i in range(node.new_cols[0], count):
            buf[i * 2 - 1] = "\\"
            buf[i * 2] = " "
    if node.shrinking:
        distance = node.folded_cols[1] - node.folded_cols[0]
        ch = "/" if line < distance + 1 else " "
        for c in node.folded_cols[1:]:
            buf[c * 2 - 1] = ch
            buf[c * 2] = " "
    return "".join(buf)


class LogPrinter:
    """Renders commits for one ``noms log`` run."""

    def __init__(self, db: Database, path: Path, opts: LogOptions) -> None:
        self.db = db
        self.path = path
        self.opts = opts
        self.commenter: Commenter = datetime_commenter(opts.tz)

    def format_commit(self, node: LogNode) -> str:
        buf = BufferWriter()
        self._print_commit(node, buf)
        return buf.getvalue()

    def _print_commit(self, node: LogNode, w: TextWriter) -> None:
        opts, commit = self.opts, node.commit
        meta = commit.get(META_FIELD)
        meta_names = [name for name, _ in meta.fields] if isinstance(meta, Struct) else []
        hash_text = str(commit.hash())
        if opts.use_color:
            hash_text = f"{COLOR_START}commit {hash_text}{COLOR_RESET}"
        parents = commit_parents(commit)
        label, value = "Parent", "None"
        if len(parents) > 1:
            label, value = "Merge", " ".join(str(p.target) for p in parents)
        elif parents:
            value = str(parents[0].target)
        if opts.oneline:
            w.write(f"{hash_text} ({label}: {value})\n")
            return
        width = max(max((len(n) for n in meta_names), default=0), len(label))
        w.write(graph_prefix(node, 0, opts) + hash_text + "\n")
        w.write(graph_prefix(node, 1, opts) + f"{label + ':':<{width + 1}} {value}\n")
        if opts.max_lines == 0:
            return
        line = self._write_meta(node, meta, width, w) if isinstance(meta, Struct) else 1
        if opts.show_value:
            self._write_value_lines(node, line, w)
        else:
            self._write_diff_lines(node, line, w)

    def _writers(self, node: LogNode, line: int, w: TextWriter, offset: int) -> tuple[MaxLineWriter, PrefixWriter]:
        mlw = MaxLineWriter(w, self.opts.max_lines, line)
        pw = PrefixWriter(mlw, lambda p: graph_prefix(node, p.num_lines + offset, self.opts), True, line)
        return mlw, pw

    def _write_meta(self, node: LogNode, meta: Struct, width: int, w: TextWriter) -> int:
        _, pw = self._writers(node, 1, w, 0)
        for name, value in meta.fields:
            pw.write(f"{name[:1].upper() + name[1:] + ':':<{width + 2}}")
            if encode_type(value.type_of()) == _DATETIME_TYPE:
                assert isinstance(value, Struct)
                seconds = value.get("secSinceEpoch")
                assert isinstance(seconds, Number)
                pw.write(format_rfc3339(seconds.value, self.opts.tz) + "\n")
            else:
                write_encoded_value(pw, value, self.commenter)
            pw.write("\n")
        return pw.num_lines

    def _write_value_lines(self, node: LogNode, line: int, w: TextWriter) -> None:
        mlw, pw = self._writers(node, line, w, 1)
        value = self.path.resolve(node.commit, self.db.store)
        if value is None:
            pw.write("<nil>\n")
            return
        failed = write_encoded_value(pw, value, self.commenter)
        mlw.max_lines = 0
        pw.needs_prefix = failed
        pw.write("...\n" if failed else "\n")
        if not node.last:
            pw.needs_prefix = True
            pw.write("\n")

    def _write_diff_lines(self, node: LogNode, line: int, w: TextWriter) -> None:
        mlw, pw = self._writers(node, line, w, 1)
        parents = commit_parents(node.commit)
        if not parents:
            pw.write("\n")
            return
        parent = self.db.read_commit(parents[0].target)
        old = self.path.resolve(parent, self.db.store)
        new = self.path.resolve(node.commit, self.db.store)
        if new is None:
            pw.write(f"new (#{node.commit.hash()}{self.path}) not found\n")
        if old is None:
            pw.write(f"old (#{parent.hash()}{self.path}) not found\n")
        if old is not None and new is not None:
            failed = print_diff(pw, old, new, self.commenter)
            mlw.max_lines = 0
            if failed:
                pw.needs_prefix = True
                pw.write("...\n")
        if not node.last:
            pw.needs_prefix = True
            pw.write("\n")

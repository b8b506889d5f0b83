"""``noms log`` rendering (NOMS-VALUES.md 10.5, 13.3): order, graph, meta, values, diffs, truncation."""

from __future__ import annotations

import datetime
import re

import pytest

import nbs
from nbs.noms.chunker import new_list
from nbs.noms.datas import Database
from nbs.noms.log import LogOptions, LogPrinter, iter_commits
from nbs.noms.path import Path
from nbs.noms.values import Number, String, Struct
from nbs.noms.writers import BufferWriter, MaxLineWriter, PrefixWriter

VALUE = Path.parse(".value")


def render(db: Database, dataset: str, path: Path = VALUE, **options: object) -> str:
    head = db.head(dataset)
    assert head is not None
    opts = LogOptions(**options)  # type: ignore[arg-type]
    printer = LogPrinter(db, path, opts)
    nodes = list(iter_commits(db, head))
    if opts.max_commits:
        nodes = nodes[:opts.max_commits]
    return "".join(printer.format_commit(n) for n in nodes)


@pytest.fixture
def graph_db() -> Database:
    """The history of noms_log_test TestNomsGraph1 (hashes checked against NOMS-VALUES.md 12.1)."""
    db = Database(nbs.new_memory_store())

    def add(ds: str, v: str) -> None:
        db.commit(ds, String(v))

    def branch(new: str, parent: str, v: str) -> None:
        head = db.head(parent)
        assert head is not None
        db.commit(new, String(v), parents=[head.ref_to()])

    def merge(a: str, b: str, v: str) -> None:
        ha, hb = db.head(a), db.head(b)
        assert ha is not None and hb is not None
        db.commit(a, String(v), parents=[ha.ref_to(), hb.ref_to()])

    for v in ("1", "2", "3"):
        add("b1", v)
    branch("b2", "b1", "3.1")
    add("b1", "3.2")
    add("b1", "3.6")
    branch("b3", "b2", "3.1.3")
    add("b3", "3.1.5")
    add("b3", "3.1.7")
    merge("b2", "b3", "3.5")
    add("b2", "3.7")
    merge("b1", "b2", "4")
    for v in ("5", "6", "7"):
        add("b1", v)
    return db


def test_graph_merge_block(graph_db: Database) -> None:
    out = render(graph_db, "b1", show_graph=True, show_value=True)
    for h in ("92u4ja5p42gr6galrq7o5ubad98qk3pp", "6eu8a3l1gunugn7uinotiv8saf783pok",
              "7f8hmd1okp98ovnph695kumm4lknuqcd"):
        assert h in out
    assert ('*   8rkr9of92el4fvg2quhflro7615roouc\n'
            '|\\  Merge: r4c42m0u4k8g08ivo005p1k3e9c8a3tq n05ujdtqd9enisrbcrifhc6n41anur3g\n'
            '| | "4"\n'
            '| | \n') in out
    assert out.endswith('* ppu3smo89vu0bdukubgooo8efeo1i7q3\n| Parent: None\n| "1"\n')


def test_commit_order_by_height(graph_db: Database) -> None:
    head = graph_db.head("b1")
    assert head is not None
    values = []
    for node in iter_commits(graph_db, head):
        v = node.commit.get("value")
        assert isinstance(v, String)
        values.append(v.text)
    assert values[:4] == ["7", "6", "5", "4"] and values[-4:] == ["3.1", "3", "2", "1"]
    assert sorted(values) == sorted(["1", "2", "3", "3.1", "3.2", "3.6", "3.1.3", "3.1.5", "3.1.7", "3.5", "3.7",
                                     "4", "5", "6", "7"])


def test_oneline_and_color(graph_db: Database) -> None:
    lines = render(graph_db, "b1", oneline=True, max_commits=4).splitlines()
    assert len(lines) == 4
    assert re.fullmatch(r"[0-9a-v]{32} \(Parent: [0-9a-v]{32}\)", lines[0])
    assert lines[3] == ("8rkr9of92el4fvg2quhflro7615roouc (Merge: r4c42m0u4k8g08ivo005p1k3e9c8a3tq "
                        "n05ujdtqd9enisrbcrifhc6n41anur3g)")
    colored = render(graph_db, "b1", oneline=True, use_color=True, max_commits=1)
    assert re.fullmatch("\x1b\\[0;91mcommit [0-9a-v]{32}\x1b\\[0m \\(Parent: [0-9a-v]{32}\\)\n", colored)


def test_meta_fields_and_diff_lines() -> None:
    """metaRes1 (compared ignoring hashes, as the Go test does)."""
    db = Database(nbs.new_memory_store())
    first = db.commit("ds1", String("1"), meta=Struct("Meta", {"longNameForTest": String("Yoo"),
                                                               "test2": String("Hoo")}))
    second = db.commit("ds1", String("2"))
    expected = ("p7jmuh67vhfccnqk1bilnlovnms1m67o\nParent: f8gjiv5974ojir9tnrl2k393o4s1tf0r\n"
                "-   \"1\"\n+   \"2\"\n\nf8gjiv5974ojir9tnrl2k393o4s1tf0r\nParent:          None\n"
                "LongNameForTest: \"Yoo\"\nTest2:           \"Hoo\"\n\n")
    expected = expected.replace("p7jmuh67vhfccnqk1bilnlovnms1m67o", str(second.hash()))
    expected = expected.replace("f8gjiv5974ojir9tnrl2k393o4s1tf0r", str(first.hash()))
    assert render(db, "ds1") == expected


def test_path_values_and_missing_paths() -> None:
    db = Database(nbs.new_memory_store())
    db.commit("ds", String("no struct"))
    for i in range(2):
        db.commit("ds", Struct("", {"bar": Number(i)}))
    out = render(db, "ds", Path.parse(".value.bar"), show_value=True)
    blocks = out.split("\n")
    assert blocks[2] == "1" and blocks[3] == ""
    assert out.endswith("Parent: None\n<nil>\n")  # no blank line after <nil>
    diff = render(db, "ds", Path.parse(".value.bar"))
    assert "-   0\n+   1\n" in diff
    head = db.head("ds")
    assert head is not None
    root_commit = list(iter_commits(db, head))[2].commit
    assert f"old (#{root_commit.hash()}.value.bar) not found\n" in diff
    assert diff.endswith("Parent: None\n\n")


def long_history() -> Database:
    db = Database(nbs.new_memory_store())
    db.commit("truncate", String("the first line"))
    words = "one two three four five six seven eight nine ten eleven".split()
    db.commit("truncate", new_list(db.store, [String(w) for w in words]))
    return db


def test_max_lines() -> None:
    db = long_history()
    out = render(db, "truncate", show_graph=True, show_value=True)
    lines = out.split("\n")
    assert lines[2] == "| [  // 11 items" and lines[9] == '|   "seven",' and lines[10] == "| ..."
    assert lines[11] == "| "
    full = render(db, "truncate", show_graph=True, show_value=True, max_lines=-1)
    assert '|   "eleven",\n| ]\n| \n' in full
    headers = render(db, "truncate", show_graph=True, max_lines=0)
    assert len(headers.splitlines()) == 4 and headers.splitlines()[2].startswith("* ")
    diff = render(db, "truncate", show_graph=True)
    assert '| -   "the first line"\n| +   [  // 11 items\n' in diff and "| +     \"six\",\n| ...\n" in diff


def test_datetime_meta_is_formatted() -> None:
    db = Database(nbs.new_memory_store())
    meta = Struct("Meta", {"date": Struct("DateTime", {"secSinceEpoch": Number(0)})})
    db.commit("ds", String("x"), meta=meta)
    out = render(db, "ds", tz=datetime.UTC)
    assert "Date:   1970-01-01T00:00:00Z\n\n" in out


def test_writers_follow_go_semantics() -> None:
    buf = BufferWriter()
    mlw = MaxLineWriter(buf, 2, 0)
    assert not mlw.write("a\nb")
    assert mlw.write("\nc\n")  # the second newline is allowed, "c" is not
    assert buf.getvalue() == "a\nb\n" and mlw.num_lines == 2
    buf = BufferWriter()
    pw = PrefixWriter(buf, lambda p: f"{p.num_lines}> ", True, 0)
    pw.write("x\ny\n")
    pw.write("z")
    assert buf.getvalue() == "0> x\n1> y\n2> z" and pw.num_lines == 2


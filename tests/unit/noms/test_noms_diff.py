"""Diffs (NOMS-VALUES.md 10.7): splices, difference walks and the printed form."""

from __future__ import annotations

import pytest

import nbs
from nbs.noms.chunker import new_blob, new_list, new_map, new_set
from nbs.noms.diff import Change, Splice, calc_splices, diff, list_splices, print_diff
from nbs.noms.value_store import ValueStore
from nbs.noms.values import Bool, Number, String, Struct, Value
from nbs.noms.writers import BufferWriter


@pytest.fixture
def vs() -> ValueStore:
    return ValueStore(nbs.new_memory_store())


def splices(old: str, new: str) -> list[tuple[int, int, int, int]]:
    result = calc_splices(len(old), len(new), 10**7, lambda i, j: old[i] == new[j])
    return [(s.at, s.removed, s.added, s.start) for s in result]


def test_calc_splices() -> None:
    assert splices("abc", "abc") == []
    assert splices("abc", "axc") == [(1, 1, 1, 1)]
    assert splices("abc", "abxc") == [(2, 0, 1, 2)]
    assert splices("abc", "ac") == [(1, 1, 0, 0)]
    assert splices("", "ab") == [(0, 0, 2, 0)]
    assert splices("abcdef", "abXYef") == [(2, 2, 2, 2)]
    assert splices("abcdef", "bcdefg") == [(0, 1, 0, 0), (6, 0, 1, 5)]


def test_oversized_matrix_falls_back_to_one_splice() -> None:
    result = calc_splices(5, 5, 4, lambda i, j: False)
    assert [(s.at, s.removed, s.added, s.start) for s in result] == [(0, 5, 5, 0)]


def test_list_splices_on_chunked_lists(vs: ValueStore) -> None:
    base: list[Value] = [Number(i) for i in range(18000)]
    old, appended = new_list(vs, base), new_list(vs, base + [Number(-i) for i in range(1, 2001)])
    assert old.level == 1
    assert list(list_splices(old, appended)) == [Splice(18000, 0, 2000, 18000)]
    changed = new_list(vs, base[:9000] + [String("x")] + base[9001:])
    assert list(list_splices(old, changed)) == [Splice(9000, 1, 1, 9000)]
    assert list(list_splices(old, old)) == []
    assert list(list_splices(old, new_list(vs, []))) == [Splice(0, 18000, 0, 0)]


def test_struct_and_map_difference_walk(vs: ValueStore) -> None:
    v1 = Struct("", {"bar": Number(1), "baz": String("x"), "m": new_map(vs, [(String("a"), Number(1)),
                                                                               (String("b"), Number(2))])})
    v2 = Struct("", {"bar": Number(2), "m": new_map(vs, [(String("a"), Number(1)), (String("c"), Number(3))]),
                     "qux": Bool(True)})
    changes = [(str_path(d.path), d.change) for d in diff(v1, v2)]
    assert changes == [(".bar", Change.MODIFIED), (".baz", Change.REMOVED), ('.m["b"]', Change.REMOVED),
                       ('.m["c"]', Change.ADDED), (".qux", Change.ADDED)]
    out = BufferWriter()
    assert not print_diff(out, v1, v2)
    assert out.getvalue() == ('(root) {\n-   bar: 1\n+   bar: 2\n-   baz: "x"\n  }\n'
                              '.m {\n-   "b": 2\n+   "c": 3\n  }\n'
                              '(root) {\n+   qux: true\n  }\n')


def str_path(parts: tuple[object, ...]) -> str:
    return "".join(str(p) for p in parts)


def test_primitive_and_cross_kind_diffs(vs: ValueStore) -> None:
    out = BufferWriter()
    print_diff(out, Number(1), Number(2))
    assert out.getvalue() == "-   1\n+   2\n"
    out = BufferWriter()
    print_diff(out, String("x"), new_list(vs, [String("a"), String("b")]))
    assert out.getvalue() == '-   "x"\n+   [\n+     "a",\n+     "b",\n+   ]\n'
    out = BufferWriter()
    print_diff(out, new_blob(vs, bytes(1600)), new_blob(vs, bytes(3100)))
    assert out.getvalue() == "-   Blob (1.6 kB)\n+   Blob (3.1 kB)\n"
    out = BufferWriter()
    print_diff(out, new_set(vs, [Number(1)]), new_set(vs, [Number(1)]))
    assert out.getvalue() == ""


def test_list_and_set_diffs_print_items(vs: ValueStore) -> None:
    out = BufferWriter()
    print_diff(out, new_list(vs, [Number(1), Number(2)]), new_list(vs, [Number(1), Number(3), Number(4)]))
    assert out.getvalue() == "(root) {\n-   2\n+   3\n+   4\n  }\n"
    out = BufferWriter()
    print_diff(out, new_set(vs, [Number(1), Number(2)]), new_set(vs, [Number(2), Number(5)]))
    assert out.getvalue() == "(root) {\n-   1\n+   5\n  }\n"
    nested_old = Struct("", {"l": new_list(vs, [Struct("", {"a": Number(1)})])})
    nested_new = Struct("", {"l": new_list(vs, [Struct("", {"a": Number(2)})])})
    out = BufferWriter()
    print_diff(out, nested_old, nested_new)
    assert out.getvalue() == ".l[0] {\n-   a: 1\n+   a: 2\n  }\n"

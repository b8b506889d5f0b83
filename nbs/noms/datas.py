"""The datasets layer (NOMS-VALUES.md 8): commits, the root map, dataset heads.

The chunk store's root is the hash of a ``Map<String, Ref<Value>>`` from
dataset name to head commit (the ref's target type is ``Value``, its height the
commit's).  Committing or deleting rewrites that map and moves the root with
the store's compare-and-swap, retrying when another writer got there first.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import TypeGuard

from nbs.addr import EMPTY_ADDR, Addr
from nbs.chunk_store import ChunkStore
from nbs.noms.chunker import new_map, new_set
from nbs.noms.errors import CommitError, DatasetError, DecodeError, MergeNeededError, ValueNotFoundError
from nbs.noms.kind import Kind
from nbs.noms.types import VALUE_TYPE, CompoundType, StructType, Type
from nbs.noms.value_store import ValueStore
from nbs.noms.values import Bool, Map, Ref, Set, String, Struct, Value

DATASET_RE = re.compile(r"[a-zA-Z0-9\-_/]+")
"""Valid dataset names; the prefix of an absolute path that matches it names a dataset."""

COMMIT_NAME = "Commit"
META_FIELD, PARENTS_FIELD, VALUE_FIELD = "meta", "parents", "value"
MAX_COMMIT_ATTEMPTS = 100
FLUSH_PREFIX = "-/flush/"


def is_valid_dataset_name(name: str) -> bool:
    return DATASET_RE.fullmatch(name) is not None


def is_commit(v: Value | None) -> TypeGuard[Struct]:
    """Whether ``v`` has the shape of a commit (NOMS-VALUES.md 8.1).

    It must be a struct named ``Commit`` whose ``meta`` is a struct, whose
    ``parents`` is a set of refs to ``Commit`` structs and which has a ``value``.
    """
    if not isinstance(v, Struct) or v.name != COMMIT_NAME:
        return False
    meta, parents = v.get(META_FIELD), v.get(PARENTS_FIELD)
    if not isinstance(meta, Struct) or not isinstance(parents, Set) or v.get(VALUE_FIELD) is None:
        return False
    set_type = parents.type_of()
    assert isinstance(set_type, CompoundType)
    return all(_is_commit_ref_type(t) for t in _members(set_type.elems[0]))


def _members(t: Type) -> list[Type]:
    if isinstance(t, CompoundType) and t.kind == Kind.UNION:
        return list(t.elems)
    return [t]


def _is_commit_ref_type(t: Type) -> bool:
    if not (isinstance(t, CompoundType) and t.kind == Kind.REF):
        return False
    return all(isinstance(m, StructType) and m.name == COMMIT_NAME for m in _members(t.elems[0]))


def commit_parents(commit: Struct) -> list[Ref]:
    """The parent refs of a commit in set order."""
    parents = commit.get(PARENTS_FIELD)
    if not isinstance(parents, Set):
        raise CommitError("commit has no parents set")
    refs = [p for p in parents if isinstance(p, Ref)]
    if len(refs) != parents.length():
        raise CommitError("commit parents must all be refs")
    return refs


class Database:
    """Datasets over a chunk store: read heads, commit values, delete datasets."""

    def __init__(self, cs: ChunkStore) -> None:
        self.cs = cs
        self.store = ValueStore(cs)

    def close(self) -> None:
        self.cs.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------------

    def root(self) -> Addr:
        return self.cs.root()

    def datasets(self) -> Map:
        """The root map (empty when the store has never been committed)."""
        return self._root_map(self.cs.root())

    def _root_map(self, root: Addr) -> Map:
        if root == EMPTY_ADDR:
            return Map(0, [], vr=self.store)
        value = self.store.read_value(root)
        if value is None:
            raise ValueNotFoundError(f"root chunk {root} is missing")
        if not isinstance(value, Map):
            raise DecodeError(f"root of database must be a Map<String, Ref<Value>>, not a {value.kind.label}")
        return value

    def head_ref(self, dataset: str) -> Ref | None:
        return self._head_ref_in(self.datasets(), dataset)

    @staticmethod
    def _head_ref_in(datasets: Map, dataset: str) -> Ref | None:
        ref = datasets.get(String(dataset))
        if ref is None:
            return None
        if not isinstance(ref, Ref):
            raise DecodeError(f"root map value for dataset {dataset!r} is a {ref.kind.label}, not a Ref")
        return ref

    def head(self, dataset: str) -> Struct | None:
        """The head commit of a dataset, or None if it has none."""
        ref = self.head_ref(dataset)
        if ref is None:
            return None
        return self.read_commit(ref.target)

    def head_value(self, dataset: str) -> Value | None:
        """The value of a dataset's head commit, or None if the dataset has no head."""
        head = self.head(dataset)
        return head.get(VALUE_FIELD) if head is not None else None

    def history(self, dataset: str) -> Iterator[Struct]:
        """The dataset's commits, newest first, in ``noms log`` order (merges followed into every parent)."""
        from nbs.noms.log import iter_commits
        head = self.head(dataset)
        if head is not None:
            for node in iter_commits(self, head):
                yield node.commit

    def read_value(self, addr: bytes) -> Value | None:
        return self.store.read_value(addr)

    def write_value(self, value: Value) -> Ref:
        """Store ``value`` (durable with the next commit or ``flush``); the ref to it."""
        return self.store.write_value(value)

    def read_commit(self, addr: bytes) -> Struct:
        value = self.store.read_value(addr)
        if value is None:
            raise ValueNotFoundError(f"commit {Addr(addr)} is missing")
        if not isinstance(value, Struct) or not is_commit(value):
            raise CommitError(f"value {Addr(addr)} is not a commit")
        return value

    # -- writing -------------------------------------------------------------------------------

    def new_commit(self, value: Value, parents: list[Ref], meta: Struct | None = None) -> Struct:
        """A commit struct (not written): meta, parents set, value."""
        return Struct(COMMIT_NAME, [(META_FIELD, meta if meta is not None else Struct("", [])),
                                    (PARENTS_FIELD, new_set(self.store, parents)),
                                    (VALUE_FIELD, value)])

    def commit(self, dataset: str, value: Value, meta: Struct | None = None,
               parents: list[Ref] | None = None) -> Struct:
        """Commit ``value`` to ``dataset`` (parents default to the current head) and move the root.

        The new commit must descend from the current head (``MergeNeededError``
        otherwise), as with Go's ``Database.Commit``.
        """
        _check_dataset_name(dataset)
        made: list[Struct] = []

        def build(head_ref: Ref | None) -> Ref:
            head = self.read_commit(head_ref.target) if head_ref is not None else None
            chosen = parents if parents is not None else ([head.ref_to()] if head is not None else [])
            commit = self.new_commit(value, chosen, meta)
            if head_ref is not None and not self._descends_from(commit, head_ref):
                raise MergeNeededError()
            made[:] = [commit]
            return self.store.write_value(commit)

        self._update_head(dataset, build)
        return made[0]

    def set_head(self, dataset: str, commit_ref: Ref) -> None:
        """Point ``dataset`` at a commit, whatever its relation to the current head (Go's ``SetHead``)."""
        _check_dataset_name(dataset)
        self.read_commit(commit_ref.target)
        self._update_head(dataset, lambda _head: commit_ref)

    def fast_forward(self, dataset: str, commit_ref: Ref) -> None:
        """Move ``dataset`` to a descendant of its head; ``MergeNeededError`` if it is not one."""
        _check_dataset_name(dataset)
        commit = self.read_commit(commit_ref.target)

        def check(head_ref: Ref | None) -> Ref:
            if head_ref is not None and head_ref.target != commit_ref.target and (
                    commit_ref.height <= head_ref.height or not self._descends_from(commit, head_ref)):
                raise MergeNeededError()
            return commit_ref

        self._update_head(dataset, check)

    def _update_head(self, dataset: str, new_head: Callable[[Ref | None], Ref]) -> None:
        """Set ``dataset`` to ``new_head(current head)`` and swap the root, retrying on a race."""
        for _ in range(MAX_COMMIT_ATTEMPTS):
            last_root = self.cs.root()
            datasets = self._root_map(last_root)
            head_ref = self._head_ref_in(datasets, dataset)
            ref = new_head(head_ref)
            entries = [(k, v) for k, v in datasets if not (isinstance(k, String) and k.value == dataset.encode())]
            entries.append((String(dataset), Ref(ref.target, VALUE_TYPE, ref.height)))
            if self._swap_root(new_map(self.store, entries), last_root):
                return
        raise DatasetError(f"could not commit to {dataset}: the root kept changing")

    def delete(self, dataset: str) -> Ref:
        """Remove a dataset from the root map; returns its old head ref."""
        for _ in range(MAX_COMMIT_ATTEMPTS):
            last_root = self.cs.root()
            datasets = self._root_map(last_root)
            head_ref = self._head_ref_in(datasets, dataset)
            if head_ref is None:
                raise DatasetError(f"Dataset {dataset} not found")
            entries = [(k, v) for k, v in datasets if not (isinstance(k, String) and k.value == dataset.encode())]
            if self._swap_root(new_map(self.store, entries), last_root):
                return head_ref
            current = self._head_ref_in(self.datasets(), dataset)
            if current is None or current.target != head_ref.target:
                raise MergeNeededError()
        raise DatasetError(f"could not delete {dataset}: the root kept changing")

    def flush(self) -> None:
        """Make every value written so far durable, the way Go's ``Database.Flush`` does.

        Go commits ``Ref(true)`` to a dataset ``-/flush/<random id>`` and deletes
        it again: the root stays the same map (an empty store gets the empty
        map as its root), and the store gains exactly the chunks Go's would,
        so ``noms stats`` prints the same chunk count and size.  The id is
        drawn so that no four bytes of it repeat in the map chunk, which keeps
        the compressed table size independent of the draw.
        """
        while True:
            name = FLUSH_PREFIX + secrets.token_hex(16)
            probe = Map(0, [(String(name), Ref(bytes(20), VALUE_TYPE, 1))], vr=self.store).encoding()
            if _grams_unique(probe, name.encode()):
                break
        self.commit(name, self.store.write_value(Bool(True)))
        self.delete(name)

    def _swap_root(self, datasets: Map, last_root: Addr) -> bool:
        new_root = self.store.write_value(datasets).target
        if self.cs.commit(new_root, last_root):
            return True
        self.cs.rebase()
        return False

    def common_ancestor(self, r1: Ref, r2: Ref) -> Ref | None:
        """The closest commit both refs descend from (Go's ``FindCommonAncestor``), or None.

        Both histories are walked from the highest refs down, so the search
        stops at the first height where the two sides share a commit.
        """
        q1, q2 = {bytes(r1.target): r1}, {bytes(r2.target): r2}
        while q1 and q2:
            h1, h2 = max(r.height for r in q1.values()), max(r.height for r in q2.values())
            if h1 == h2:
                top1, top2 = _pop_height(q1, h1), _pop_height(q2, h2)
                common = next((r for key, r in top1.items() if key in top2), None)
                if common is not None:
                    return common
                self._queue_parents(top1, q1)
                self._queue_parents(top2, q2)
            elif h1 > h2:
                self._queue_parents(_pop_height(q1, h1), q1)
            else:
                self._queue_parents(_pop_height(q2, h2), q2)
        return None

    def _queue_parents(self, refs: dict[bytes, Ref], queue: dict[bytes, Ref]) -> None:
        for ref in refs.values():
            for parent in commit_parents(self.read_commit(ref.target)):
                queue.setdefault(bytes(parent.target), parent)

    def _descends_from(self, commit: Struct, ancestor: Ref) -> bool:
        """Whether ``ancestor`` is reachable through parents (searching only refs at least as high)."""
        pending = list(commit_parents(commit))
        seen: set[bytes] = set()
        while pending:
            ref = pending.pop()
            if ref.target == ancestor.target:
                return True
            if ref.height <= ancestor.height or bytes(ref.target) in seen:
                continue
            seen.add(bytes(ref.target))
            pending.extend(commit_parents(self.read_commit(ref.target)))
        return False


def _pop_height(queue: dict[bytes, Ref], height: int) -> dict[bytes, Ref]:
    popped = {k: r for k, r in queue.items() if r.height == height}
    for key in popped:
        del queue[key]
    return popped


def _grams_unique(data: bytes, part: bytes) -> bool:
    """Whether every 4-byte window touching ``part`` occurs only once in ``data``."""
    at = data.find(part)
    grams = [data[i:i + 4] for i in range(len(data) - 3)]
    return all(grams.count(grams[i]) == 1 for i in range(max(at - 3, 0), min(at + len(part), len(grams))))


def _check_dataset_name(name: str) -> None:
    if not is_valid_dataset_name(name):
        raise DatasetError(f"Invalid dataset name: {name}")

"""``noms list|map|set|struct new|...``: build and edit collections and structs from the command line.

``new`` builds a value in a database; the editing subcommands take a value
spec (``db::#hash`` or ``db::dataset``, optionally with a path into the value),
apply the edit where the path points, and write the new root value.  All of
them print ``#<hash of the written root><path>`` and flush like Go (so the
store's root becomes the datasets map even in a new store).

Unlike Go, ``set del`` removes the items (Go's always panics when an item is
present), deleting list items out of range and NaN/Inf values are errors
rather than crashes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nbs.noms.cmdline import Arg, Command, Flag, Values
from nbs.noms.commands.arguments import ArgumentError, argument_to_value, check_field_name, key_part
from nbs.noms.commands.base import Env
from nbs.noms.datas import Database
from nbs.noms.chunker import new_list
from nbs.noms.edit import list_splice, map_edit, set_edit, struct_delete, struct_set, update_at
from nbs.noms.path import HashIndexPath, IndexPath
from nbs.noms.spec import AbsolutePath, ValueSpec
from nbs.noms.types import NAME_RE
from nbs.noms.values import List, Map, Set, Struct, Value

Prepare = Callable[[Database], Callable[[Value], Value]]


def commands() -> list[Command]:
    items = Arg("items", "items to insert", "strings")
    entries = Arg("entries", "key/value pairs for entries", "strings")
    fields = Arg("fields", "key/value pairs for field names and values", "strings")
    return [
        Command("list", "Interact with lists.", commands=[
            Command("new", "creates a new list", args=[Arg("database", "spec to db to create list within",
                                                           required=True), items], run=list_new),
            Command("append", "appends one or more items to a list",
                    args=[Arg("spec", "value spec for the list to edit", required=True), items], run=list_append),
            Command("insert", "inserts one or more items into a list",
                    args=[Arg("pos", "position to insert new items at", "uint", True),
                          Arg("spec", "value spec for the list to edit", required=True), items], run=list_insert),
            Command("del", "removes one or more items from the list",
                    args=[Arg("spec", "value spec for the list to edit", required=True),
                          Arg("pos", "index to remove items at", "uint", True),
                          Arg("len", "number of items to remove", "uint", True)], run=list_del)]),
        Command("map", "Interact with maps.", commands=[
            Command("new", "creates a new map", args=[Arg("database", "spec to db to create map within",
                                                          required=True), entries], run=map_new),
            Command("set", "sets one or more keys in a map",
                    args=[Arg("spec", "value spec for the map to edit", required=True), entries], run=map_set),
            Command("del", "removes one or more entries from a map",
                    args=[Arg("spec", "value spec for the map to edit", required=True),
                          Arg("keys", "keys for the entries to be removed", "strings")], run=map_del)]),
        Command("set", "Interact with sets.", commands=[
            Command("new", "creates a new set", args=[Arg("database", "spec to db to create set within",
                                                          required=True), items], run=set_new),
            Command("insert", "inserts one or more items into a set",
                    args=[Arg("spec", "value spec for the set to edit", required=True), items], run=set_insert),
            Command("del", "removes one or more items from a set",
                    args=[Arg("spec", "value spec for the set to edit", required=True),
                          Arg("items", "items to delete", "strings")], run=set_del)]),
        Command("struct", "Interact with structs.", commands=[
            Command("new", "creates a new struct", flags=[Flag("name", "name for new struct")],
                    args=[Arg("database", "spec to db to create struct within", required=True), fields],
                    run=struct_new),
            Command("set", "sets one or more fields of a struct",
                    args=[Arg("spec", "value spec for the struct to edit", required=True), fields],
                    run=struct_set_cmd),
            Command("del", "removes one or more fields from a struct",
                    args=[Arg("spec", "value spec for the struct to edit", required=True),
                          Arg("fields", "fields to be removed", "strings")], run=struct_del)]),
    ]


# -- helpers ---------------------------------------------------------------------------------------

def _parse_values(env: Env, db: Database, args: Sequence[str], positions: Sequence[int], what: str) -> list[Value]:
    """Parse value arguments; a bad one fails with Go's ``Invalid <what>: ... at position N: ...``."""
    values = []
    for i in positions:
        try:
            values.append(argument_to_value(args[i], db))
        except ArgumentError as err:
            env.fail(f"Invalid {what}: {args[i]} at position {i}: {err}", usage=err.usage)
    return values


def _items(env: Env, db: Database, args: Sequence[str]) -> list[Value]:
    return _parse_values(env, db, args, range(len(args)), "value")


def _write_root(env: Env, db: Database, value: Value, suffix: str = "") -> int:
    with env.checked(usage=False):
        ref = db.store.write_value(value)
        db.flush()
    env.write(f"#{ref.target}{suffix}\n")
    return 0


def _even(env: Env, args: Sequence[str]) -> None:
    if len(args) % 2:
        env.fail("Must be an even number of key/value pairs", usage=True)


def _edit(env: Env, spec_text: str, kind: type[Value], prepare: Prepare, check_first: bool = False,
          absent: str = "No value at: {spec}") -> int:
    """Apply an edit to the value ``spec_text`` points at, write the new root and print its path.

    ``prepare`` parses the command's arguments and returns the edit; as in
    Go, that happens before the value at the path is checked, except for
    ``list append`` (``check_first``).
    """
    db, spec, _ = env.open_path(spec_text, usage=False)
    root_path = AbsolutePath(spec.path.dataset, spec.path.digest)
    with env.checked(usage=False):
        root = root_path.resolve(db) if not root_path.is_empty() else None
    if root is None:  # Go crashes here
        env.fail(f"Invalid path: {_spec_string(spec)}")
    edit = None if check_first else prepare(db)
    with env.checked(usage=False):
        base = spec.path.path.resolve(root, db.store)
    if base is None:
        env.fail(absent.format(spec=_spec_string(spec), arg=spec_text))
    if not isinstance(base, kind):
        env.fail(f"value at {spec_text} is not {kind.__name__.lower()}")
    apply = edit if edit is not None else prepare(db)
    with env.checked(usage=False):
        new_root = update_at(db.store, root, spec.path.path.parts, apply)
    return _write_root(env, db, new_root, str(spec.path.path))


def _spec_string(spec: ValueSpec) -> str:
    """Go's ``Spec.String()``: ``nbs:dir::path`` (``mem::path``)."""
    return f"{spec.database}::{spec.path}"


def _strs(values: Values, name: str) -> list[str]:
    result = values[name]
    assert isinstance(result, list)
    return [str(v) for v in result]


def _int(values: Values, name: str) -> int:
    result = values[name]
    assert isinstance(result, int)
    return result


def _checked(env: Env, build: Callable[[], Value]) -> Value:
    with env.checked(usage=False):
        return build()


# -- lists -----------------------------------------------------------------------------------------

def list_new(env: Env, values: Values) -> int:
    db = env.open_database(str(values["database"]), usage=False)
    items = _items(env, db, _strs(values, "items"))
    return _write_root(env, db, _checked(env, lambda: new_list(db.store, items)))


def _splice(env: Env, args: Sequence[str], at: int | None, remove: int) -> Prepare:
    def prepare(db: Database) -> Callable[[Value], Value]:
        items = _items(env, db, args)

        def apply(value: Value) -> Value:
            assert isinstance(value, List)
            return list_splice(db.store, value, value.length() if at is None else at, remove, items)
        return apply
    return prepare


def list_append(env: Env, values: Values) -> int:
    return _edit(env, str(values["spec"]), List, _splice(env, _strs(values, "items"), None, 0), check_first=True,
                 absent="no value at path: {arg}")


def list_insert(env: Env, values: Values) -> int:
    return _edit(env, str(values["spec"]), List, _splice(env, _strs(values, "items"), _int(values, "pos"), 0))


def list_del(env: Env, values: Values) -> int:
    return _edit(env, str(values["spec"]), List, _splice(env, [], _int(values, "pos"), _int(values, "len")))


# -- maps ------------------------------------------------------------------------------------------

def _key_part(env: Env, arg: str, position: int) -> IndexPath | HashIndexPath:
    try:
        part = key_part(arg, position)
    except ArgumentError as err:
        env.fail(str(err), usage=err.usage)
    assert isinstance(part, (IndexPath, HashIndexPath))
    return part


def _map_key(m: Map, part: IndexPath | HashIndexPath) -> Value | None:
    """The key a key argument names; a ``#hash`` key names an existing non-primitive key."""
    if isinstance(part, IndexPath):
        return part.index
    return HashIndexPath(part.digest, into_key=True).resolve(m, None)


def _map_sets(env: Env, args: Sequence[str]) -> Prepare:
    _even(env, args)

    def prepare(db: Database) -> Callable[[Value], Value]:
        parts, items = [], []
        for i in range(0, len(args), 2):
            parts.append(_key_part(env, args[i], i))
            items.append(_parse_values(env, db, args, [i + 1], "value")[0])

        def apply(value: Value) -> Value:
            assert isinstance(value, Map)
            keys = [_map_key(value, part) for part in parts]
            return map_edit(db.store, value, sets=[(k, v) for k, v in zip(keys, items) if k is not None])
        return apply
    return prepare


def map_new(env: Env, values: Values) -> int:
    db = env.open_database(str(values["database"]), usage=False)
    apply = _map_sets(env, _strs(values, "entries"))(db)
    return _write_root(env, db, _checked(env, lambda: apply(Map(0, vr=db.store))))


def map_set(env: Env, values: Values) -> int:
    return _edit(env, str(values["spec"]), Map, _map_sets(env, _strs(values, "entries")))


def _without_arguments(apply: Callable[[Database, Value], Value]) -> Prepare:
    """An edit whose arguments were all checked up front (they name keys or fields, not values)."""
    return lambda db: lambda value: apply(db, value)


def map_del(env: Env, values: Values) -> int:
    parts = [_key_part(env, arg, i) for i, arg in enumerate(_strs(values, "keys"))]

    def remove(db: Database, value: Value) -> Value:
        assert isinstance(value, Map)
        keys = [_map_key(value, part) for part in parts]
        return map_edit(db.store, value, removes=[k for k in keys if k is not None])
    return _edit(env, str(values["spec"]), Map, _without_arguments(remove))


# -- sets ------------------------------------------------------------------------------------------

def _set_edit(env: Env, args: Sequence[str], insert: bool) -> Prepare:
    def prepare(db: Database) -> Callable[[Value], Value]:
        items = []
        for arg in args:
            try:
                items.append(argument_to_value(arg, db))
            except ArgumentError as err:
                env.fail(str(err))

        def apply(value: Value) -> Value:
            assert isinstance(value, Set)
            if insert:
                return set_edit(db.store, value, inserts=items)
            return set_edit(db.store, value, removes=items)
        return apply
    return prepare


def set_new(env: Env, values: Values) -> int:
    db = env.open_database(str(values["database"]), usage=False)
    apply = _set_edit(env, _strs(values, "items"), True)(db)
    return _write_root(env, db, _checked(env, lambda: apply(Set(0, vr=db.store))))


def set_insert(env: Env, values: Values) -> int:
    return _edit(env, str(values["spec"]), Set, _set_edit(env, _strs(values, "items"), True))


def set_del(env: Env, values: Values) -> int:
    return _edit(env, str(values["spec"]), Set, _set_edit(env, _strs(values, "items"), False))


# -- structs ---------------------------------------------------------------------------------------

def _field_name(env: Env, name: str, position: int) -> str:
    try:
        check_field_name(name, position)
    except ArgumentError as err:
        env.fail(str(err), usage=True)
    return name


def _struct_sets(env: Env, args: Sequence[str]) -> Prepare:
    _even(env, args)

    def prepare(db: Database) -> Callable[[Value], Value]:
        fields = []
        for i in range(0, len(args), 2):
            fields.append((_field_name(env, args[i], i), _parse_values(env, db, args, [i + 1], "field value")[0]))

        def apply(value: Value) -> Value:
            assert isinstance(value, Struct)
            for name, field in fields:
                value = struct_set(value, name, field)
            return value
        return apply
    return prepare


def struct_new(env: Env, values: Values) -> int:
    db = env.open_database(str(values["database"]), usage=False)
    name = str(values["name"])
    apply = _struct_sets(env, _strs(values, "fields"))(db)
    if name and not NAME_RE.fullmatch(name):
        env.fail(f'Invalid struct name: "{name}"')
    return _write_root(env, db, apply(Struct(name, [])))


def struct_set_cmd(env: Env, values: Values) -> int:
    return _edit(env, str(values["spec"]), Struct, _struct_sets(env, _strs(values, "fields")))


def struct_del(env: Env, values: Values) -> int:
    names = [_field_name(env, arg, i) for i, arg in enumerate(_strs(values, "fields"))]

    def remove(db: Database, value: Value) -> Value:
        assert isinstance(value, Struct)
        for name in names:
            value = struct_delete(value, name)
        return value
    return _edit(env, str(values["spec"]), Struct, _without_arguments(remove))

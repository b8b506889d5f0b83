"""``noms json in DB FILE|@`` and ``noms json out PATH FILE|@`` (``@`` is stdin / stdout)."""

from __future__ import annotations

from nbs.noms.cmdline import Arg, Command, Flag, Values
from nbs.noms.commands.base import Env
from nbs.noms.json_codec import from_json, to_json


def command() -> Command:
    return Command("json", "Import or export JSON.", commands=[
        Command("in", "imports data into Noms from JSON", flags=[
            Flag("structs", "JSON objects will be imported to structs, otherwise maps", "bool")],
                args=[Arg("to", "Database spec to import to", required=True),
                      Arg("from", "File to import from, or '@' to import from stdin", required=True)], run=run_in),
        Command("out", "exports data from Noms to JSON", flags=[
            Flag("structs", "Enable export of Noms structs (to JSON objects)", "bool"),
            Flag("indent", "Number of spaces to indent when pretty-printing", default="\t")],
                args=[Arg("path", "Absolute path to value to export", required=True),
                      Arg("to", "File to export to, or '@' to export to stdout", required=True)], run=run_out),
    ])


def run_in(env: Env, values: Values) -> int:
    db = env.open_database(str(values["to"]), usage=False)
    source = str(values["from"])
    if source == "@":
        text = env.stdin.read()
    else:
        try:
            with open(source, "rb") as f:
                text = f.read()
        except OSError as err:
            env.fail(f"open {source}: {_go_os_error(err)}")
    with env.checked(usage=False):
        value = from_json(text, db.store, bool(values["structs"]))
        ref = db.store.write_value(value)
        db.flush()
    env.write(f"#{ref.target}\n")
    return 0


def run_out(env: Env, values: Values) -> int:
    text = str(values["path"])
    _, _, value = env.open_path(text, usage=False)
    if value is None:
        env.fail(f"No value at {text}")
    with env.checked(usage=False):
        output = to_json(value, str(values["indent"]), bool(values["structs"]))
    target = str(values["to"])
    if target == "@":
        env.write(output)
        return 0
    try:
        with open(target, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(output)
    except OSError as err:
        env.fail(f"open {target}: {_go_os_error(err)}")
    return 0


def _go_os_error(err: OSError) -> str:
    """Go's text for an OS error: the lower-case strerror (``no such file or directory``)."""
    return (err.strerror or str(err)).lower()

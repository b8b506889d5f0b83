"""kingpin's parsing rules and messages (``nbs.noms.cmdline``), Go's RFC 3339 check, JSON and status output."""

from __future__ import annotations

import hashlib
import io

import pytest

from nbs.noms.chunker import new_list
from nbs.noms.cmdline import Arg, Command, Flag, UsageError, check_error_usage_line, parse
from nbs.noms.config import Resolver, read_config
from nbs.noms.gotime import TimeParseError, check_rfc3339
from nbs.noms.json_codec import JSONError, escape_field_name, from_json, go_json_number, to_json
from nbs.noms.status import Status
from nbs.noms.value_store import ValueStore
from nbs.noms.values import Map, Number, String
import nbs

APP = Command("noms", "", flags=[Flag("quite", "", "bool", short="q")], commands=[
    Command("log", "", flags=[Flag("max-lines", "", "int", "9"), Flag("n", "", "int", "0", short="n"),
                              Flag("graph", "", "bool")],
            args=[Arg("value", "", required=True)]),
    Command("list", "", commands=[Command("new", "", args=[Arg("db", "", required=True),
                                                             Arg("items", "", "strings")])]),
])


@pytest.mark.parametrize("argv, values", [
    (["log", "x"], {"max-lines": 9, "value": "x", "graph": False}),
    (["log", "--max-lines=-1", "x", "--graph"], {"max-lines": -1, "graph": True}),
    (["log", "-n3", "x"], {"n": 3}),
    (["log", "-n", "0x10", "x"], {"n": 16}),
    (["-q", "log", "--no-graph", "x"], {"quite": True, "graph": False}),
    (["list", "new", "db", "--", "-2", "--x"], {"items": ["-2", "--x"]}),
])
def test_parses_like_kingpin(argv: list[str], values: dict[str, object]) -> None:
    parsed = parse(APP, argv)
    assert {k: parsed.values[k] for k in values} == values


@pytest.mark.parametrize("argv, message", [
    (["list", "new", "db", "-2"], "unknown short flag '-2'"),
    (["log", "--max-lines", "-1", "x"], "expected argument for flag '--max-lines'"),
    (["log", "--max-lines", "x", "y"], 'strconv.ParseInt: parsing "x": invalid syntax'),
    (["log"], "required argument 'value' not provided"),
    (["log", "a", "b"], "unexpected b"),
    (["nope"], 'expected command but got "nope"'),
    (["list"], "must select a subcommand of 'list'"),
    ([], "command not specified"),
    (["log", "--bogus", "x"], "unknown long flag '--bogus'"),
])
def test_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(APP, argv)
    assert str(info.value) == message


def test_check_error_usage_line_rejects_the_first_argument() -> None:
    assert check_error_usage_line(["stats", "bad:spec"]) == "noms: error: unexpected stats\n"
    assert check_error_usage_line(["-q", "merge"]) == "noms: error: unknown short flag '-q'\n"


@pytest.mark.parametrize("text, error", [
    ("2021-08-01T12:00:00Z", None),
    ("2021-08-01T12:00:00.123+02:00", None),
    ("2021-08-01", 'parsing time "2021-08-01" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "T"'),
    ("2021-13-01T12:00:00Z", 'parsing time "2021-13-01T12:00:00Z": month out of range'),
    ("2021-02-30T12:00:00Z", 'parsing time "2021-02-30T12:00:00Z": day out of range'),
    ("2021-08-01T12:00:00Zx", 'parsing time "2021-08-01T12:00:00Zx": extra text: "x"'),
    ("21-08-01T12:00:00Z", 'parsing time "21-08-01T12:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse '
                           '"21-08-01T12:00:00Z" as "2006"'),
])
def test_rfc3339_like_go(text: str, error: str | None) -> None:
    if error is None:
        check_rfc3339(text)
        return
    with pytest.raises(TimeParseError) as info:
        check_rfc3339(text)
    assert str(info.value) == error


def test_json_round_trip_and_go_formatting() -> None:
    store = ValueStore(nbs.open_store("mem"))
    value = from_json(b' {"b": [1, null, 1e21, 0.0000001], "a": "<&>", "c": {}} trailing', store)
    assert isinstance(value, Map) and value.get(String("a")) == String("<&>")
    assert to_json(value, "") == '{"a":"\\u003c\\u0026\\u003e","b":[1,1e+21,1e-7],"c":{}}\n'
    assert go_json_number(12345678901234.0) == "12345678901234"
    assert escape_field_name("1bad key") == "Q31badQ20key"
    for text, message in [(b"", "EOF"), (b'{"a": 1,', "unexpected EOF"),
                          (b"[1 2]", "invalid character '2' after array element"),
                          (b'{"a" 1}', "invalid character '1' after object key")]:
        with pytest.raises(JSONError) as info:
            from_json(text, store)
        assert str(info.value) == message
    with pytest.raises(JSONError, match="Map key kind Number not supported"):
        to_json(Map(0, [(Number(1), Number(2))]))
    assert to_json(new_list(store, [])) == "[]\n"


def test_status_throttles_repaints_and_done_shows_the_last() -> None:
    now = [0.0]
    out = io.BytesIO()
    status = Status(out, lambda: now[0])
    status.printf("a")
    now[0] = 0.05
    status.printf("b")
    status.printf("c")
    now[0] = 0.2
    assert status.will_print()
    status.done()
    assert out.getvalue() == b"\x1b[2K\ra\x1b[2K\rc\n"


def test_nomsconfig_aliases_default_and_dot(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / ".nomsconfig"  # type: ignore[operator]
    path.write_text('[db.default]\nurl = "store"\n[db.other]\nurl = "nbs:/abs/other"\n')
    config = read_config(str(path))
    resolver = Resolver(config)
    home = str(tmp_path)
    assert resolver.path_spec("ds") == f"{home}/store::ds"
    assert resolver.path_spec("other::.") == "nbs:/abs/other::ds"
    assert resolver.db_spec("") == f"{home}/store"
    assert str(config) == f'file = {path}\n[db.default]\n\turl = "{home}/store"\n[db.other]\n\turl = "nbs:/abs/other"\n'


def test_chunk_refs_of_meta_nodes_match_decoding() -> None:
    from nbs.noms.decode import decode_value
    from nbs.noms.pull import chunk_refs
    from nbs.noms.walk import walk_refs
    from nbs.noms.chunker import new_blob, new_map, new_set
    store = ValueStore(nbs.open_store("mem"))
    blob = b"".join(hashlib.sha256(bytes([i % 256, i // 256])).digest() for i in range(20_000))
    nodes = [new_list(store, [Number(i) for i in range(20_000)]), new_blob(store, blob),
             new_map(store, [(String(str(i)), Number(i)) for i in range(20_000)]),
             new_set(store, [new_list(store, [Number(i)]) for i in range(3000)])]
    for node in nodes:
        assert node.level > 0
        data = node.encoding()
        assert chunk_refs(data) == [bytes(r.target) for r in walk_refs(decode_value(data))]


def test_help_names_the_command_its_flags_and_arguments() -> None:
    from nbs.noms.cli import main
    out = io.BytesIO()
    assert main(["sync", "--help"], out, io.StringIO()) == 0
    text = out.getvalue().decode()
    assert text.startswith("usage: noms sync [<flags>] <source-object> <dest-dataset>") and "--parallelism" in text
    out = io.BytesIO()
    assert main(["help"], out, io.StringIO()) == 0 and "  merge  " in out.getvalue().decode()


def test_verbose_logs_config_rewrites(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbs.noms.cli import main
    (tmp_path / ".nomsconfig").write_text('[db.default]\nurl = "store"\n')  # type: ignore[operator]
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    err = io.StringIO()
    assert main(["-v", "ds", ""], io.BytesIO(), err) == 0
    assert err.getvalue().endswith(f'\tresolving "" -> {tmp_path}/store\n')
    out = io.BytesIO()
    assert main(["config"], out, io.StringIO()) == 0 and out.getvalue().startswith(b"file = ")

"""``noms diff [--stat] VAL1 VAL2``: the difference between two values, as Go prints it."""

from __future__ import annotations

from nbs.noms.cmdline import Arg, Command, Flag, Values
from nbs.noms.commands.base import Env
from nbs.noms.commands.inspect import NO_PAGER
from nbs.noms.diff import diff_text
from nbs.noms.diff_summary import summary
from nbs.noms.values import Value


def command() -> Command:
    return Command("diff", "Shows the difference between two values.", flags=[
        Flag("stat", "writes a summary of the changes instead", "bool"), NO_PAGER,
    ], args=[Arg("val1", "first value", required=True), Arg("val2", "second value", required=True)], run=run_diff)


def _value(env: Env, text: str) -> Value:
    _, _, value = env.open_path(text, usage=False)
    if value is None:
        env.fail(f"Value not found: {text}")
    return value


def run_diff(env: Env, values: Values) -> int:
    v1, v2 = _value(env, str(values["val1"])), _value(env, str(values["val2"]))
    with env.checked(usage=False):
        if values["stat"]:
            summary(env.status, v1, v2)
            return 0
        text = diff_text(v1, v2)
    env.write(text)
    return 0

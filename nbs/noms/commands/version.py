"""``noms version`` and ``noms config``."""

from __future__ import annotations

from nbs.manifest import NOMS_VERSION
from nbs.noms.cmdline import Command, Values
from nbs.noms.commands.base import Env
from nbs.noms.config import find_config


def command() -> Command:
    return Command("version", "Print the noms version", run=run_version)


def config_command() -> Command:
    return Command("config", "Display noms config info.", run=run_config)


def run_version(env: Env, values: Values) -> int:
    env.write(f"format version: {NOMS_VERSION}\nbuilt from <developer build>\n")
    return 0


def run_config(env: Env, values: Values) -> int:
    with env.checked(usage=True):
        config = find_config()
    env.write("no config active\n" if config is None else f"{config}\n")
    return 0

"""``.nomsconfig``: database aliases and a default database for command-line specs (Go's go/config).

The CLI looks for ``.nomsconfig`` in the working directory and then in each
parent.  Its ``[db.<alias>]`` tables give ``url``s; relative local paths are
relative to the file's directory.  With a config, ``alias::ds`` means
``<url>::ds``, a spec without ``::`` (or an empty database) means the
``default`` alias, and a later ``.`` stands for the first dataset/path given.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field

from nbs.noms.errors import NomsError

CONFIG_FILE = ".nomsconfig"
DEFAULT_ALIAS = "default"
SEPARATOR = "::"


class ConfigError(NomsError):
    """A ``.nomsconfig`` that cannot be read or parsed."""


@dataclass
class Config:
    """A parsed ``.nomsconfig``: its absolute path and ``alias -> url``."""

    file: str
    dbs: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"file = {self.file}\n"]
        for alias in sorted(self.dbs):
            lines.append(f'[db.{alias}]\n\turl = "{self.dbs[alias]}"\n')
        return "".join(lines)


def find_config(start: str | None = None) -> Config | None:
    """The closest ``.nomsconfig`` at or above ``start`` (default: the working directory)."""
    directory = os.path.abspath(start if start is not None else os.getcwd())
    while True:
        candidate = os.path.join(directory, CONFIG_FILE)
        if os.path.isfile(candidate):
            return read_config(candidate)
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def read_config(path: str) -> Config:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"Failed to read .nomsconfig due to: {err}") from err
    home = os.path.dirname(os.path.abspath(path))
    dbs: dict[str, str] = {}
    for alias, table in (data.get("db") or {}).items():
        url = table.get("url", "") if isinstance(table, dict) else ""
        dbs[alias] = _qualify(home, str(url))
    return Config(os.path.abspath(path), dbs)


def _qualify(home: str, url: str) -> str:
    """Make a relative local path in ``url`` relative to the config file's directory."""
    protocol, sep, rest = url.partition(":")
    if not sep and url != "mem" and not os.path.isabs(url):
        return os.path.join(home, url)
    if protocol == "nbs" and not os.path.isabs(rest):
        return "nbs:" + os.path.join(home, rest)
    return url


class Resolver:
    """Rewrites command-line specs through the config, if there is one (Go's ``config.Resolver``).

    ``log``, when given, is told every rewrite (``noms -v`` shows them, as Go does).
    """

    def __init__(self, config: Config | None, log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.log = log
        self._dot_path = ""

    def _told(self, text: str, result: str) -> str:
        if self.log is not None and result != text:
            self.log(f"\tresolving {text or chr(34) * 2} -> {result}")
        return result

    def db_spec(self, text: str) -> str:
        if self.config is None:
            return text
        return self._told(text, self._db(text))

    def path_spec(self, text: str) -> str:
        if self.config is None:
            return text
        db, sep, rest = text.partition(SEPARATOR)
        if not sep:
            db, rest = "", text
        if not self._dot_path:
            self._dot_path = rest
        elif rest == ".":
            rest = self._dot_path
        return self._told(text, self._db(db) + SEPARATOR + rest)

    def _db(self, text: str) -> str:
        assert self.config is not None
        return self.config.dbs.get(DEFAULT_ALIAS, "") if text == "" else self.config.dbs.get(text, text)

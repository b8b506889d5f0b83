"""Values and keys written on the ``noms`` command line (Go's ``argumentToValue`` and ``ParsePathIndex``).

A value argument is ``true``/``false``, a quoted string (only ``\\"`` and
``\\\\`` escapes), ``@<absolute path>`` (a value already in the database), a
number in any form Go's ``ParseFloat`` reads, or else the text itself as a
string.  NaN and the infinities, which Go accepts here and then crashes on,
are rejected.
"""

from __future__ import annotations

import math

from nbs.noms.datas import Database
from nbs.noms.errors import NomsError
from nbs.noms.path import PathPart, HashIndexPath, IndexPath, parse_go_float, parse_path_index
from nbs.noms.spec import AbsolutePath
from nbs.noms.types import NAME_RE
from nbs.noms.values import Bool, Number, String, Value


class ArgumentError(NomsError):
    """A value or key argument that does not parse; ``usage`` says whether Go adds its usage line."""

    usage = True


class CrashingArgumentError(ArgumentError):
    """An argument Go accepts and then crashes on: reported with one error line."""

    usage = False


def argument_to_value(arg: str, db: Database) -> Value:
    if arg == "":
        return String("")
    if arg in ("true", "false"):
        return Bool(arg == "true")
    if arg[0] == '"':
        return String(_quoted(arg))
    if arg[0] == "@":
        try:
            value = AbsolutePath.parse(arg[1:]).resolve(db)
        except NomsError as err:
            raise CrashingArgumentError(str(err)) from err
        if value is None:
            raise CrashingArgumentError(f"No value at {arg[1:]}")
        return value
    number = parse_go_float(arg)
    if number is not None:
        if not math.isfinite(number):
            raise CrashingArgumentError(("NaN" if math.isnan(number) else ("+" if number > 0 else "-") + "Inf")
                                + " is not a supported number")
        return Number(number)
    return String(arg)


def _quoted(arg: str) -> str:
    chars: list[str] = []
    i = 1
    while i < len(arg):
        c = arg[i]
        if c == '"':
            if i != len(arg) - 1:
                break
            return "".join(chars)
        if c == "\\":
            i += 1
            if i == len(arg):
                raise CrashingArgumentError(f"Invalid string argument: {arg}")
            if arg[i] not in '\\"':
                raise ArgumentError(f"Invalid string argument: {arg}: Only '\\' and '\"' can be escaped")
            c = arg[i]
        chars.append(c)
        i += 1
    raise ArgumentError(f"Invalid string argument: {arg}")


def key_part(arg: str, position: int) -> PathPart:
    """A map key argument (``"k"``, ``3``, ``true``, ``#hash``) as the path part that addresses it."""
    if arg == "":
        raise CrashingArgumentError(f"Invalid key:  at position {position}: Empty index value")
    try:
        index, digest, rest = parse_path_index(arg)
    except NomsError as err:
        raise ArgumentError(f"Invalid key: {arg} at position {position}: {err}") from err
    if rest:
        raise ArgumentError(f"Invalid key: {arg} at position {position}")
    if index is not None:
        return IndexPath(index)
    assert digest is not None
    return HashIndexPath(digest)


def check_field_name(name: str, position: int) -> None:
    if not NAME_RE.fullmatch(name):
        raise ArgumentError(f"Invalid field name: {name} at position: {position}")

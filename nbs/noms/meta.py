"""Commit metadata: the ``Meta`` struct that ``noms commit`` and the library attach to commits.

``new_meta`` builds ``struct Meta {date, message?, <custom fields>}`` the way
Go's ``spec.CreateCommitMetaStruct`` does: ``date`` is the RFC 3339 text as
given (checked as Go checks it) or the current UTC time, ``message`` is left
out when empty, and custom fields are strings or any Noms values.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from nbs.noms.errors import NomsError
from nbs.noms.gotime import TimeParseError, check_rfc3339
from nbs.noms.types import NAME_RE
from nbs.noms.values import String, Struct, Value

META_NAME = "Meta"


class MetaError(NomsError):
    """Commit metadata that cannot be used (an unparsable date, a bad field name)."""


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_meta(date: str | datetime.datetime | None = None, message: str = "",
             fields: Mapping[str, str | Value] | None = None) -> Struct:
    """The ``Meta`` struct for a commit (``date`` defaults to now, UTC)."""
    values: dict[str, Value] = {}
    for name, value in (fields or {}).items():
        if not NAME_RE.fullmatch(name):
            raise MetaError(f"Invalid meta key: {name}")
        values[name] = String(value) if isinstance(value, str) else value
    if isinstance(date, datetime.datetime):
        if date.tzinfo is None:
            raise MetaError("a commit date needs a time zone")
        date = date.isoformat().replace("+00:00", "Z")
    if not date:
        date = now_rfc3339()
    else:
        try:
            check_rfc3339(date)
        except TimeParseError as err:
            raise MetaError(f"Unable to parse date: {date}, error: {err}") from err
    values["date"] = String(date)
    if message:
        values["message"] = String(message)
    return Struct(META_NAME, values)

"""Checking RFC 3339 dates the way Go's ``time.Parse(time.RFC3339, s)`` does, with its error messages.

``noms commit --date`` stores the date text as given once Go accepts it, and
reports a rejected one with Go's exact message, e.g. ``parsing time
"2021-08-01" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "T"``.
"""

from __future__ import annotations

import calendar
import re

from nbs.noms.quote import go_quote

RFC3339 = "2006-01-02T15:04:05Z07:00"
# (literal prefix, layout element) pairs of the RFC 3339 layout, in order.
_CHUNKS = (("", "2006"), ("-", "01"), ("-", "02"), ("T", "15"), (":", "04"), (":", "05"), ("", "Z07:00"))
_YEAR = re.compile(r"[+-]?[0-9]+")


class TimeParseError(ValueError):
    """A date Go's ``time.Parse`` rejects; the message is Go's."""


def _q(text: str) -> str:
    return go_quote(text.encode("utf-8", "surrogateescape"))


def _num(value: str, fixed: bool) -> tuple[int, str] | None:
    """Go's ``getnum``: one or two leading digits (exactly two when ``fixed``)."""
    if not value[:1].isdigit() or not value[:1].isascii():
        return None
    if not value[1:2].isdigit() or not value[1:2].isascii():
        return None if fixed else (int(value[0]), value[1:])
    return int(value[:2]), value[2:]


def check_rfc3339(text: str) -> None:
    """Raise ``TimeParseError`` unless Go would parse ``text`` with the RFC 3339 layout."""
    value = text
    fields: dict[str, int] = {}
    for prefix, element in _CHUNKS:
        if not value.startswith(prefix):
            raise TimeParseError(f"parsing time {_q(text)} as {_q(RFC3339)}: cannot parse {_q(value)} as {_q(prefix)}")
        value = value[len(prefix):]
        rest, out_of_range = _element(element, value, fields)
        if rest is None:
            raise TimeParseError(f"parsing time {_q(text)} as {_q(RFC3339)}: cannot parse {_q(value)} as "
                                 f"{_q(element)}")
        if out_of_range:
            raise TimeParseError(f"parsing time {_q(text)}: {out_of_range} out of range")
        value = rest
    if value:
        raise TimeParseError(f"parsing time {_q(text)}: extra text: {_q(value)}")
    year, month, day = fields["2006"], fields["01"], fields["02"]
    if day < 1 or day > calendar.monthrange(year if 1 <= year <= 9999 else 2000, month)[1]:
        raise TimeParseError(f"parsing time {_q(text)}: day out of range")


def _element(element: str, value: str, fields: dict[str, int]) -> tuple[str | None, str]:
    """Parse one layout element; returns (the rest or None if it does not parse, range error name)."""
    if element == "2006":
        if len(value) < 4 or not _YEAR.fullmatch(value[:4]):
            return None, ""
        fields[element] = int(value[:4])
        return value[4:], ""
    if element == "Z07:00":
        if value.startswith("Z"):
            return value[1:], ""
        if len(value) < 6 or value[3] != ":" or value[0] not in "+-":
            return None, ""
        hours, minutes = _num(value[1:3], True), _num(value[4:6], True)
        if hours is None or minutes is None:
            return None, ""
        if hours[0] > 24:
            return value[6:], "time zone offset hour"
        return value[6:], "time zone offset minute" if minutes[0] > 60 else ""
    parsed = _num(value, element != "15")
    if parsed is None:
        return None, ""
    number, rest = parsed
    fields[element] = number
    limits = {"01": (1, 12, "month"), "02": (0, 31, ""), "15": (0, 23, "hour"), "04": (0, 59, "minute"),
              "05": (0, 59, "second")}
    low, high, name = limits[element]
    if element == "05" and len(rest) >= 2 and rest[0] in ".," and rest[1].isdigit():
        digits = 1
        while digits < len(rest) and rest[digits].isdigit() and rest[digits].isascii():
            digits += 1
        rest = rest[digits:]
    return rest, name if name and not low <= number <= high else ""

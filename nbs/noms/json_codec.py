"""JSON to Noms values and back, as ``noms json in`` / ``noms json out`` do it (Go's ``util/json``).

In: objects become Maps with String keys (or, with ``structs``, anonymous
Structs whose keys are escaped into field names), arrays Lists, numbers
Numbers; ``null`` members and items are dropped.  Only the first JSON value of
the input is read, and errors carry Go's ``encoding/json`` wording.
Out: Go's encoder - object keys sorted, ``<``, ``>``, ``&`` escaped, numbers in
Go's float format, the given indent (none: compact) and a final newline.
"""

from __future__ import annotations

import json
import math
import re

from nbs.noms.chunker import ValueWriter, new_list, new_map
from nbs.noms.errors import NomsError
from nbs.noms.number_format import format_e, format_f
from nbs.noms.values import Blob, Bool, List, Map, Number, Ref, Set, String, Struct, TypeValue, Value

_WHITESPACE = " \t\r\n"
_FIELD_START = re.compile(r"[a-zA-Z]")
_FIELD_CHAR = re.compile(r"[a-zA-Z0-9_]")


class JSONError(NomsError):
    """JSON that cannot be read, or a value that cannot be written as JSON."""


def escape_field_name(name: str) -> str:
    """Go's ``types.EscapeStructField``: invalid characters become ``Q`` + their UTF-8 bytes in hex."""
    out = []
    for i, ch in enumerate(name):
        valid = _FIELD_START.fullmatch(ch) if i == 0 else _FIELD_CHAR.fullmatch(ch)
        if valid and ch != "Q":
            out.append(ch)
        else:
            out.append("Q" + ch.encode("utf-8", "surrogatepass").hex().upper())
    return "".join(out)


def from_json(text: bytes, store: ValueWriter, structs: bool = False) -> Value:
    decoded = text.decode("utf-8", "replace")
    start = len(decoded) - len(decoded.lstrip(_WHITESPACE))
    if start == len(decoded):
        raise JSONError("EOF")
    try:
        pile, _ = json.JSONDecoder(parse_constant=_reject_constant).raw_decode(decoded, start)
    except json.JSONDecodeError as err:
        raise JSONError(_go_error(err)) from None
    value = _to_value(pile, store, structs)
    if value is None:
        raise JSONError("cannot import a JSON null")
    return value


def _reject_constant(name: str) -> object:
    raise JSONError(f"invalid character '{name[0]}' looking for beginning of value")


def _go_error(err: json.JSONDecodeError) -> str:
    """Go's ``encoding/json`` wording for a syntax error Python's decoder found."""
    if err.pos >= len(err.doc.rstrip(_WHITESPACE)):
        return "unexpected EOF"
    char = err.doc[err.pos]
    shown = "'\\''" if char == "'" else f"'{char}'" if char.isprintable() else f"'\\x{ord(char):02x}'"
    context = {"Expecting value": "looking for beginning of value",
               "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
               "Expecting ':' delimiter": "after object key"}.get(err.msg)
    if context is None and err.msg == "Expecting ',' delimiter":
        context = "after object key:value pair" if _innermost(err.doc[:err.pos]) == "{" else "after array element"
    return f"invalid character {shown} {context or 'in string literal'}"


def _innermost(prefix: str) -> str:
    """The innermost unclosed bracket in ``prefix``, skipping string contents."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in prefix:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _to_value(o: object, store: ValueWriter, structs: bool) -> Value | None:
    if o is None:
        return None
    if isinstance(o, bool):
        return Bool(o)
    if isinstance(o, (int, float)):
        number = float(o)
        if not math.isfinite(number):
            raise JSONError(f"json: cannot unmarshal number {o} into Go value of type float64")
        return Number(number)
    if isinstance(o, str):
        return String(o)
    if isinstance(o, list):
        items = [v for v in (_to_value(item, store, structs) for item in o) if v is not None]
        return new_list(store, items)
    assert isinstance(o, dict)
    members = [(k, v) for k, v in ((k, _to_value(item, store, structs)) for k, item in o.items()) if v is not None]
    if structs:
        return Struct("", {escape_field_name(k): v for k, v in members})
    return new_map(store, [(String(k), v) for k, v in members])


# -- out -------------------------------------------------------------------------------------------

def to_json(value: Value, indent: str = "\t", structs: bool = False) -> str:
    """The JSON text Go's encoder writes for ``value`` (with the trailing newline)."""
    parts: list[str] = []
    _write(value, structs, indent, 0, parts)
    return "".join(parts) + "\n"


def _write(v: Value, structs: bool, indent: str, depth: int, out: list[str]) -> None:
    if isinstance(v, Bool):
        out.append("true" if v.value else "false")
    elif isinstance(v, Number):
        out.append(go_json_number(v.value))
    elif isinstance(v, String):
        out.append(go_json_string(v.text))
    elif isinstance(v, (List, Set)):
        _write_array(list(v), structs, indent, depth, out)
    elif isinstance(v, Map):
        members = []
        for k, item in v:
            if not isinstance(k, String):
                raise JSONError(f"Map key kind {k.kind.label} not supported")
            members.append((k.text, item))
        _write_object(members, structs, indent, depth, out)
    elif isinstance(v, Struct):
        if not structs:
            raise JSONError("Struct marshaling not enabled")
        if v.name:
            raise JSONError("Named struct marshaling not supported")
        _write_object(list(v.fields), structs, indent, depth, out)
    else:
        assert isinstance(v, (Blob, Ref, TypeValue))
        raise JSONError(f"Unsupported kind: {v.kind.label}")


def _newline(indent: str, depth: int) -> str:
    return "\n" + indent * depth if indent else ""


def _write_array(items: list[Value], structs: bool, indent: str, depth: int, out: list[str]) -> None:
    if not items:
        out.append("[]")
        return
    out.append("[")
    for i, item in enumerate(items):
        out.append(("," if i else "") + _newline(indent, depth + 1))
        _write(item, structs, indent, depth + 1, out)
    out.append(_newline(indent, depth) + "]")


def _write_object(members: list[tuple[str, Value]], structs: bool, indent: str, depth: int, out: list[str]) -> None:
    if not members:
        out.append("{}")
        return
    out.append("{")
    for i, (key, item) in enumerate(sorted(members, key=lambda m: m[0].encode("utf-8", "surrogatepass"))):
        out.append(("," if i else "") + _newline(indent, depth + 1) + go_json_string(key) + (": " if indent else ":"))
        _write(item, structs, indent, depth + 1, out)
    out.append(_newline(indent, depth) + "}")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
            "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json_string(text: str) -> str:
    out = ['"']
    for ch in text:
        escaped = _ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:  # bytes that were not UTF-8
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_json_number(f: float) -> str:
    """Go's float64 JSON form: plain decimal, or exponent form below 1e-6 and from 1e21 (``1e-7``, ``1e+21``)."""
    magnitude = abs(f)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = format_e(f)
        mantissa, _, exponent = text.partition("e")
        sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits}"
    return format_f(f)

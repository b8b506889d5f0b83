"""Go's ``strconv.Quote`` over raw string bytes, used to print Noms strings.

Valid UTF-8 runes that are printable (Go's ``IsPrint``, which matches Python's
``str.isprintable``) are copied; ``\\a \\b \\f \\n \\r \\t \\v``, ``\\\\`` and ``\\"``
are escaped by name; other control characters become ``\\xNN``, other
non-printable runes ``\\uNNNN`` / ``\\UNNNNNNNN``; every byte of invalid UTF-8
becomes ``\\xNN``.
"""

from __future__ import annotations

_NAMED = {0x07: "\\a", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x0B: "\\v",
          0x5C: "\\\\", 0x22: '\\"'}


def go_quote(raw: bytes) -> str:
    text = raw.decode("utf-8", "surrogateescape")
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = ['"']
    for ch in text:
        cp = ord(ch)
        named = _NAMED.get(cp)
        if named is not None:
            out.append(named)
        elif 0xDC80 <= cp <= 0xDCFF:  # an undecodable byte (surrogateescape)
            out.append(f"\\x{cp - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif cp < 0x20 or cp == 0x7F:
            out.append(f"\\x{cp:02x}")
        elif cp < 0x10000:
            out.append(f"\\u{cp:04x}")
        else:
            out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)

"""Go's ``strconv.FormatFloat(f, 'g' | 'f', -1, 64)`` for Noms numbers.

Both start from the shortest decimal digits that round-trip (Python's ``repr``
computes the same digits as Go's shortest formatting).  ``'g'`` switches to
exponent form when the decimal exponent is below -4 or at least 6 (Go uses
precision 6 for that decision in shortest mode); ``'f'`` never does.
"""

from __future__ import annotations

import math


def _shortest_digits(f: float) -> tuple[str, int]:
    """Digits d1..dn (no leading/trailing zeros) and the decimal point position dp.

    The value is 0.d1d2...dn * 10**dp; zero is ("0", 1).
    """
    text = repr(abs(f))
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    dp = len(whole) + exponent - (len(whole + frac) - len((whole + frac).lstrip("0")))
    digits = digits.rstrip("0")
    if not digits:
        return "0", 1
    return digits, dp


def _special(f: float) -> str | None:
    """Go's text for NaN and the infinities; None for finite numbers."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    return None


def format_g(f: float) -> str:
    """``FormatFloat(f, 'g', -1, 64)``: e.g. 1e+06, 123456, 0.0001, 1e-05, -0."""
    special = _special(f)
    if special is not None:
        return special
    digits, dp = _shortest_digits(f)
    if dp - 1 < -4 or dp - 1 >= 6:
        return format_e(f)
    return ("-" if math.copysign(1.0, f) < 0 else "") + _fixed(digits, dp)


def format_e(f: float) -> str:
    """``FormatFloat(f, 'e', -1, 64)``: shortest digits in exponent form, e.g. 1e+21, 1.5e-07."""
    special = _special(f)
    if special is not None:
        return special
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    digits, dp = _shortest_digits(f)
    exp = dp - 1 if digits != "0" else 0
    body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{body}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def format_f(f: float) -> str:
    """``FormatFloat(f, 'f', -1, 64)``: plain decimal, e.g. 1e20 -> 100000000000000000000."""
    special = _special(f)
    if special is not None:
        return special
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    digits, dp = _shortest_digits(f)
    return sign + _fixed(digits, dp)


def _fixed(digits: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * -dp + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]

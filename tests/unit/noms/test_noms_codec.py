"""Primitive encodings: NOMS-VALUES.md 0.2 (varints) and 2.1 (numbers), codec_test.go."""

from __future__ import annotations

import math

import pytest

from nbs.noms.codec import Reader, Writer, encode_uvarint, float_to_mantissa_exp, zigzag
from nbs.noms.errors import DecodeError, EncodeError


@pytest.mark.parametrize("n, expected", [(0, "00"), (1, "02"), (-1, "01"), (2, "04"), (-2, "03"), (-15, "1d")])
def test_zigzag_varint(n: int, expected: str) -> None:
    w = Writer()
    w.varint(n)
    assert w.data().hex() == expected
    assert Reader(w.data()).varint() == n


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16383, 16384, 2**32, 2**63, 2**64 - 1])
def test_uvarint_round_trip(n: int) -> None:
    data = encode_uvarint(n)
    r = Reader(data)
    assert r.count() == n and r.at_end()
    assert data[-1] < 0x80 and all(b >= 0x80 for b in data[:-1])


def test_uvarint_overflow_and_truncation_are_errors() -> None:
    with pytest.raises(DecodeError):
        Reader(bytes([0xFF] * 10 + [0x01])).count()
    with pytest.raises(DecodeError):
        Reader(bytes([0xFF] * 9 + [0x02])).count()
    with pytest.raises(DecodeError):
        Reader(b"\x80").count()


# NOMS-VALUES.md 2.1: number -> (mantissa, exponent) zigzag bytes.
NUMBER_VECTORS = [
    (0.0, "0000"), (1.0, "0200"), (2.0, "0202"), (-2.0, "0102"), (0.5, "0201"), (-0.5, "0101"),
    (0.25, "0203"), (3.0, "0600"), (15.0, "1e00"), (-15.0, "1d00"), (256.0, "0210"), (-1.5, "0501"),
    (0.1, "9ab3e6cc99b3e60c6d"), (1e20, "e2d896de8eaf2b28"), (5e-324, "02e310"),
]


@pytest.mark.parametrize("f, expected", NUMBER_VECTORS)
def test_number_encoding(f: float, expected: str) -> None:
    w = Writer()
    w.number(f)
    assert w.data().hex() == expected
    r = Reader(bytes.fromhex(expected) + b"\xaa")
    assert r.number() == f
    assert r.pos == len(expected) // 2  # reading consumes exactly the number's bytes


def test_canonical_mantissa_is_odd() -> None:
    assert float_to_mantissa_exp(2.0) == (1, 1)
    assert float_to_mantissa_exp(256.0) == (1, 8)
    assert float_to_mantissa_exp(3.0) == (3, 0)
    assert float_to_mantissa_exp(0.5) == (1, -1)
    assert float_to_mantissa_exp(0.1) == (3602879701896397, -55)


def test_negative_zero_encodes_like_zero() -> None:
    a, b = Writer(), Writer()
    a.number(-0.0)
    b.number(0.0)
    assert a.data() == b.data() == bytes(2)
    assert math.copysign(1.0, Reader(a.data()).number()) == 1.0


@pytest.mark.parametrize("f, message", [(math.nan, "NaN is not a supported number"),
                                        (math.inf, "+Inf is not a supported number"),
                                        (-math.inf, "-Inf is not a supported number")])
def test_non_finite_numbers_are_rejected(f: float, message: str) -> None:
    with pytest.raises(EncodeError, match=re_escape(message)):
        Writer().number(f)


def re_escape(s: str) -> str:
    import re
    return re.escape(s)


@pytest.mark.parametrize("f", [92233720368547760.0, -92233720368547760.0, 1.7976931348623157e308, 2.0 ** -52,
                               9007199254740991.0, -9007199254740991.0, 1e18, 1e19, 1e20, 1 / 3, 123.456])
def test_number_round_trips(f: float) -> None:
    w = Writer()
    w.number(f)
    assert Reader(w.data()).number() == f


def test_zigzag_matches_go() -> None:
    assert zigzag(0) == 0 and zigzag(-1) == 1 and zigzag(1) == 2 and zigzag(-64) == 127

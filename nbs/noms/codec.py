"""Primitive encodings: uvarints, zigzag varints, strings, hashes and numbers (NOMS-VALUES.md 0.2, 2.1).

``Writer`` appends to a bytearray and ``Reader`` is a cursor over immutable
bytes; both are shared by the value and type codecs.
"""

from __future__ import annotations

import math

from nbs.addr import ADDR_SIZE
from nbs.noms.errors import DecodeError, EncodeError

MAX_VARINT_LEN = 10


def encode_uvarint(n: int) -> bytes:
    """Unsigned LEB128, like Go's ``binary.PutUvarint``."""
    if n < 0:
        raise EncodeError(f"uvarint of a negative number {n}")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def zigzag(n: int) -> int:
    """Map a signed integer to the unsigned one that ``binary.PutVarint`` writes."""
    return 2 * n if n >= 0 else -2 * n - 1


def float_to_mantissa_exp(f: float) -> tuple[int, int]:
    """The canonical (odd mantissa, exponent) pair of a finite float; zero is (0, 0)."""
    if math.isnan(f):
        raise EncodeError("NaN is not a supported number")
    if math.isinf(f):
        raise EncodeError(("+" if f > 0 else "-") + "Inf is not a supported number")
    if f == 0:
        return 0, 0
    numerator, denominator = abs(f).as_integer_ratio()
    if denominator == 1:
        shift = (numerator & -numerator).bit_length() - 1
        mantissa, exponent = numerator >> shift, shift
    else:
        mantissa, exponent = numerator, 1 - denominator.bit_length()
    return (-mantissa if f < 0 else mantissa), exponent


def mantissa_exp_to_float(mantissa: int, exponent: int) -> float:
    """Decode a number; Go multiplies ``float64(mantissa)`` by ``2**exponent``."""
    try:
        return math.ldexp(float(mantissa), exponent)
    except OverflowError as err:
        raise DecodeError(f"number {mantissa}*2^{exponent} is out of range") from err


class Writer:
    """Appends Noms primitive encodings to a growing buffer."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def u8(self, b: int) -> None:
        self.buf.append(b)

    def raw(self, data: bytes | bytearray | memoryview) -> None:
        self.buf += data

    def count(self, n: int) -> None:
        if 0 <= n < 0x80:
            self.buf.append(n)
        else:
            self.buf += encode_uvarint(n)

    def varint(self, n: int) -> None:
        self.count(zigzag(n))

    def bool(self, b: bool) -> None:
        self.buf.append(1 if b else 0)

    def string(self, s: bytes) -> None:
        self.count(len(s))
        self.buf += s

    def number(self, f: float) -> None:
        mantissa, exponent = float_to_mantissa_exp(f)
        self.varint(mantissa)
        self.varint(exponent)

    def data(self) -> bytes:
        return bytes(self.buf)


class Reader:
    """A cursor over one chunk's bytes; every read checks bounds and raises ``DecodeError``."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def at_end(self) -> bool:
        return self.pos >= len(self.buf)

    def peek(self) -> int:
        if self.pos >= len(self.buf):
            raise DecodeError("unexpected end of data")
        return self.buf[self.pos]

    def u8(self) -> int:
        pos = self.pos
        if pos >= len(self.buf):
            raise DecodeError("unexpected end of data")
        self.pos = pos + 1
        return self.buf[pos]

    def raw(self, n: int) -> bytes:
        start, end = self.pos, self.pos + n
        if end > len(self.buf):
            raise DecodeError(f"unexpected end of data: wanted {n} bytes, {len(self.buf) - start} left")
        self.pos = end
        return self.buf[start:end]

    def count(self) -> int:
        buf, pos = self.buf, self.pos
        if pos < len(buf) and buf[pos] < 0x80:
            self.pos = pos + 1
            return buf[pos]
        result = shift = 0
        for i in range(MAX_VARINT_LEN):
            if pos >= len(buf):
                raise DecodeError("unexpected end of data in a varint")
            b = buf[pos]
            pos += 1
            if b < 0x80:
                if i == MAX_VARINT_LEN - 1 and b > 1:
                    break
                self.pos = pos
                return result | (b << shift)
            result |= (b & 0x7F) << shift
            shift += 7
        raise DecodeError("varint overflows 64 bits")

    def varint(self) -> int:
        u = self.count()
        return -((u + 1) >> 1) if u & 1 else u >> 1

    def bool(self) -> bool:
        return self.u8() == 1

    def string(self) -> bytes:
        return self.raw(self.count())

    def hash(self) -> bytes:
        return self.raw(ADDR_SIZE)

    def number(self) -> float:
        mantissa = self.varint()
        exponent = self.varint()
        return mantissa_exp_to_float(mantissa, exponent)

"""Chunk addresses: the first 20 bytes of SHA-512, written in Noms base32.

Noms base32 is RFC 4648 bit packing with the alphabet ``0-9a-v``.  Because the
alphabet is in ASCII order, sorting the text sorts the bytes.  20 bytes are
exactly 32 characters, so there is never padding.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence

from nbs.errors import AddressError

ADDR_SIZE = 20
PREFIX_SIZE = 8
SUFFIX_SIZE = ADDR_SIZE - PREFIX_SIZE
ADDR_TEXT_SIZE = 32

_RFC = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_NOMS = b"0123456789abcdefghijklmnopqrstuv"
_TO_NOMS = bytes.maketrans(_RFC, _NOMS)
_TO_RFC = bytes.maketrans(_NOMS, _RFC)
_ADDR_TEXT = re.compile(r"[0-9a-v]{32}")
_BASE32_TEXT = re.compile(r"(?:[0-9a-v]{8})*(?:[0-9a-v]{2}={6}|[0-9a-v]{4}={4}|[0-9a-v]{5}={3}|[0-9a-v]{7}=)?")


def encode_base32(raw: bytes) -> str:
    """Noms base32 text of any byte string (no padding needed for 20 bytes)."""
    return base64.b32encode(raw).translate(_TO_NOMS).decode("ascii")


def compute_addr(data: bytes | bytearray | memoryview) -> bytes:
    """The raw 20-byte address of ``data`` (hot-path form of ``Addr.of``)."""
    return hashlib.sha512(data).digest()[:ADDR_SIZE]


def addresses_of(chunks: Sequence[bytes]) -> list[Addr]:
    """``Addr.of`` of each chunk; a digest prefix is 20 bytes by construction, so none is length-checked."""
    new, sha512 = bytes.__new__, hashlib.sha512
    return [new(Addr, sha512(data).digest()[:ADDR_SIZE]) for data in chunks]


def unpack_addrs(packed: bytes) -> list[Addr]:
    """The addresses laid back to back in ``packed``, 20 bytes each (the caller checks the length): none is
    length-checked, as ``Addr(raw)`` would."""
    new = bytes.__new__
    return [new(Addr, packed[i:i + ADDR_SIZE]) for i in range(0, len(packed), ADDR_SIZE)]


def digests_of(chunks: Sequence[bytes]) -> list[bytes]:
    """The address of each chunk as plain ``bytes``, which the garbage collector does not track (an ``Addr``,
    a subclass, is tracked: many of them make it run often and long)."""
    sha512 = hashlib.sha512
    return [sha512(data).digest()[:ADDR_SIZE] for data in chunks]


def validate_addr_text(text: str) -> bool:
    """Go's ``ValidateAddr``: any well-formed base32 string in the Noms alphabet.

    It accepts lengths other than 32 (with standard ``=`` padding); the on-disk
    table cache uses it to decide which files are tables.
    """
    return bool(text) and _BASE32_TEXT.fullmatch(text) is not None


class Addr(bytes):
    """A 20-byte chunk address.  It *is* ``bytes``, so it hashes and compares as such."""

    __slots__ = ()

    def __new__(cls, raw: bytes | bytearray | memoryview) -> Addr:
        if len(raw) != ADDR_SIZE:
            raise AddressError(f"an address is {ADDR_SIZE} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    @classmethod
    def of(cls, data: bytes | bytearray | memoryview) -> Addr:
        """Address of a chunk's bytes."""
        return cls(compute_addr(data))

    @classmethod
    def parse(cls, text: str) -> Addr:
        """Strictly parse 32 Noms base32 characters."""
        if not isinstance(text, str) or _ADDR_TEXT.fullmatch(text) is None:
            raise AddressError(f"invalid address {text!r}: want 32 characters of 0-9a-v")
        return cls(base64.b32decode(text.encode("ascii").translate(_TO_RFC)))

    @classmethod
    def maybe_parse(cls, text: str) -> Addr | None:
        """Like ``parse`` but returns None for invalid text (Go's ``MaybeParse``)."""
        try:
            return cls.parse(text)
        except AddressError:
            return None

    @property
    def prefix(self) -> int:
        """Bytes 0..7 as a big-endian unsigned integer (the index sort key)."""
        return int.from_bytes(self[:PREFIX_SIZE], "big")

    @property
    def suffix(self) -> bytes:
        """Bytes 8..19, stored in a table's suffix block."""
        return bytes(self[PREFIX_SIZE:])

    def is_empty(self) -> bool:
        """True for the all-zero address (no root, no lock, no table)."""
        return self == EMPTY_ADDR

    def __str__(self) -> str:
        return encode_base32(self)

    def __repr__(self) -> str:
        return f"Addr('{encode_base32(self)}')"


EMPTY_ADDR = Addr(bytes(ADDR_SIZE))


def as_addr(value: bytes | str) -> Addr:
    """Coerce caller input (raw bytes, an ``Addr`` or base32 text) to an ``Addr``."""
    if isinstance(value, Addr):
        return value
    if isinstance(value, str):
        return Addr.parse(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Addr(value)
    raise AddressError(f"cannot use {type(value).__name__} as an address")

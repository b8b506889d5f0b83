import pytest

from nbs.addr import EMPTY_ADDR, Addr, addresses_of, as_addr, encode_base32, validate_addr_text
from nbs.errors import AddressError

VECTORS = [
    (b"abc", "rmnjb8cjc5tblj21ed4qs821649eduie", "ddaf35a193617abacc417349ae20413112e6fa4e"),
    (b"hello2", "h8fh8lbvbq671mj9eo8u4cbofkhmv6kp", "8a1f14557f5e8c70da697611e231787d236f9a99"),
    (b"goodbye2", "jrpfiftacigg7652bcub9boig5uhggsj", "9ef2f93faa64a10398a25b3cb4af12817d184393"),
    (b"badbye2", "1tnlcsftqomno196hop8vjrr3032qhsk", "0f6f5671fdd62d7c05268e328fcf7b18062d4794"),
]


@pytest.mark.parametrize("data,text,hexed", VECTORS)
def test_address_vectors(data: bytes, text: str, hexed: str) -> None:
    a = Addr.of(data)
    assert str(a) == text
    assert a.hex() == hexed
    assert Addr.parse(text) == a


def test_abc_prefix_and_empty() -> None:
    a = Addr.of(b"abc")
    assert a.prefix == 15974045371385084602
    assert int.from_bytes(a[16:], "big") == 0x12E6FA4E
    assert a.suffix == bytes.fromhex("cc417349ae20413112e6fa4e")
    assert str(Addr.of(b"")) == "pu1u2dbutusbrsak518dcrc00vb21p05"
    assert str(EMPTY_ADDR) == "0" * 32 and EMPTY_ADDR.is_empty()


def test_text_order_is_byte_order() -> None:
    addrs = [Addr.of(bytes([i])) for i in range(200)]
    assert sorted(addrs) == sorted(addrs, key=str)


@pytest.mark.parametrize("bad", ["", "x" * 32, "0" * 31, "0" * 33, "W" * 32, "rmnjb8cjc5tblj21ed4qs821649eduiE",
                                 " rmnjb8cjc5tblj21ed4qs821649eduie"])
def test_parse_rejects_bad_text(bad: str) -> None:
    with pytest.raises(AddressError):
        Addr.parse(bad)
    assert Addr.maybe_parse(bad) is None


def test_wrong_length_bytes_rejected() -> None:
    with pytest.raises(AddressError):
        Addr(b"short")
    with pytest.raises(AddressError):
        as_addr(42)  # type: ignore[arg-type]


def test_as_addr_accepts_text_and_bytes() -> None:
    a = Addr.of(b"abc")
    assert as_addr(str(a)) == a and as_addr(bytes(a)) == a and as_addr(a) is a


def test_validate_addr_text_follows_go_padding_rules() -> None:
    assert validate_addr_text("rmnjb8cjc5tblj21ed4qs821649eduie")
    assert validate_addr_text("abcdefgh")
    assert validate_addr_text("ab======")
    assert not validate_addr_text("boo")
    assert not validate_addr_text("nbs_table_x")
    assert encode_base32(b"\x00" * 5) == "00000000"


def test_addresses_of_many_chunks() -> None:
    chunks = [b"", b"abc", b"x" * 5000]
    found = addresses_of(chunks)
    assert found == [Addr.of(c) for c in chunks] and all(type(a) is Addr for a in found)
    assert addresses_of([]) == []

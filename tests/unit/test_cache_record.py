import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbsclient import cache_record as cr

KEY = b"k" * 20
T1, T2 = b"1" * 20, b"2" * 20


def test_round_trip_and_visibility() -> None:
    value = cr.encode(KEY, 7, [T1, T2], b"chunk")
    assert cr.verify(KEY, value) == 2
    assert cr.tables_of(value, 2) == [T1, T2] and cr.seq_of(value) == 7
    assert cr.visible_chunk(KEY, memoryview(value), {T2}) == b"chunk"
    assert cr.visible_chunk(KEY, memoryview(value), {b"3" * 20}) is None
    assert cr.visible_chunk(KEY, memoryview(value), {T1}, b"head:") == b"head:chunk"
    one = cr.encode(KEY, 8, [T1], b"only")
    assert cr.visible_chunk(KEY, memoryview(one), {T1}, b">") == b">only"
    assert cr.visible_chunk(KEY, memoryview(one), {T2}, b">") is None


@pytest.mark.parametrize("position", [0, 1, 8, 10, 17, 20, 40, 60, -1])
def test_any_flipped_byte_is_detected(position: int) -> None:
    value = bytearray(cr.encode(KEY, 7, [T1, T2], b"chunk bytes"))
    value[position] ^= 0x40
    with pytest.raises(cr.CorruptRecordError):
        cr.visible_chunk(KEY, memoryview(bytes(value)), {T1, T2})


def test_wrong_key_is_detected() -> None:
    with pytest.raises(cr.CorruptRecordError):
        cr.verify(b"x" * 20, cr.encode(KEY, 1, [T1], b"c"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(blob: bytes) -> None:
    try:
        cr.visible_chunk(KEY, memoryview(blob), {T1})
    except cr.CorruptRecordError:
        pass

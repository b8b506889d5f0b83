"""Table writer/reader: golden bytes and Go's table_test.go scenarios (NBS-FORMAT.md 2, 14.4)."""

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbs.addr import Addr
from nbs.chunk_source import BytesReaderAt, TableChunkSource
from nbs.errors import ChunkError, CorruptTableError
from nbs.table_index import MAGIC, encode_sorted_index, parse_table_index
from nbs.table_writer import TableWriter, build_table
from tests.helpers import TEST_CHUNKS, table_source

GOLDEN_HEX = (
    "061468656c6c6f32dedb4094081c676f6f6462796532ead535cb0718626164627965328145164c"
    "0f6f5671fdd62d7c000000028a1f14557f5e8c70000000009ef2f93faa64a10300000001"
    "0000000c0000000e0000000d"
    "da697611e231787d236f9a9998a25b3cb4af12817d18439305268e328fcf7b18062d4794"
    "000000030000000000000015ffb5d8c22463ee50"
)


def test_golden_table_bytes_and_name() -> None:
    t = build_table((Addr.of(c), c) for c in TEST_CHUNKS)
    assert t.data.hex() == GOLDEN_HEX
    assert len(t.data) == 143
    assert str(t.name) == "uog0qvhml7hmloq557j88qfgeptqpo13"
    assert t.name == Addr(hashlib.sha512(t.data[-20 - 36:-20]).digest()[:20])


def test_abc_def_ghi_table_is_131_bytes() -> None:
    t = build_table((Addr.of(c), c) for c in [b"abc", b"def", b"ghi"])
    assert len(t.data) == 131
    assert str(t.name) == "qof4q00nc7re145nuf50rqu4hh5ime48"
    index = parse_table_index(t.data, "t", len(t.data))
    assert index.data_len == 27


def test_magic_is_sha256_of_repository_url() -> None:
    assert MAGIC == hashlib.sha256(b"https://github.com/attic-labs/nbs").digest()[:8]


def test_simple() -> None:
    src = table_source(TEST_CHUNKS)
    for c in TEST_CHUNKS:
        assert src.has(Addr.of(c))
        assert src.get(Addr.of(c)) == c
    for c in [b"yo", b"do", b"so much to do"]:
        assert not src.has(Addr.of(c))
        assert src.get(Addr.of(c)) is None


def test_has_many() -> None:
    src = table_source(TEST_CHUNKS)
    addrs = sorted(Addr.of(c) for c in TEST_CHUNKS)
    assert src.has_many(addrs) == []
    assert src.has_many([Addr.of(b"nope"), *addrs]) == [Addr.of(b"nope")]


def test_has_many_sequential_prefix() -> None:
    texts = ["0rfgadopg6h3fk7d253ivbjsij4qo3nv", "0rfgadopg6h3fk7d253ivbjsij4qo4nv", "0rfgadopg6h3fk7d253ivbjsij4qo9nv"]
    addrs = [Addr.parse(t) for t in texts]
    assert len({a.prefix for a in addrs}) == 1
    t = build_table((a, b"bogus") for a in addrs)
    src = TableChunkSource(t.name, parse_table_index(t.data, "t"), BytesReaderAt(t.data), 4096)
    assert src.has_many(addrs[1:]) == []
    assert all(src.get(a) == b"bogus" for a in addrs)


def test_get_many() -> None:
    src = table_source(TEST_CHUNKS)
    found: dict[bytes, bytes] = {}
    missing = src.get_many([Addr.of(c) for c in TEST_CHUNKS] + [Addr.of(b"x")], found)
    assert missing == [Addr.of(b"x")]
    assert found == {Addr.of(c): c for c in TEST_CHUNKS}


def test_calc_reads() -> None:
    src = table_source(TEST_CHUNKS, block_size=0)
    addrs = sorted(Addr.of(c) for c in TEST_CHUNKS)
    assert src.calc_reads(addrs) == (1, [])
    reads, remaining = src.calc_reads(sorted([Addr.of(TEST_CHUNKS[0]), Addr.of(TEST_CHUNKS[2])]))
    assert (reads, remaining) == (2, [])


def test_get_many_coalesces_reads_within_block_size() -> None:
    class Counting(BytesReaderAt):
        reads: list[tuple[int, int]] = []

        def read_at(self, offset: int, length: int) -> bytes:
            self.reads.append((offset, length))
            return super().read_at(offset, length)

    t = build_table((Addr.of(c), c) for c in TEST_CHUNKS)
    reader = Counting(t.data)
    src = TableChunkSource(t.name, parse_table_index(t.data, "t"), reader, 4096)
    src.get_many([Addr.of(TEST_CHUNKS[0]), Addr.of(TEST_CHUNKS[2])], {})
    assert reader.reads == [(0, 39)]  # one read spanning the gap of record 1
    reader.reads.clear()
    src.block_size = 13
    src.get_many([Addr.of(TEST_CHUNKS[0]), Addr.of(TEST_CHUNKS[2])], {})
    assert reader.reads == [(0, 12), (26, 13)]  # a 14-byte gap is more than 13


def test_extract() -> None:
    src = table_source(TEST_CHUNKS)
    assert list(src.extract()) == [(Addr.of(c), c) for c in TEST_CHUNKS]


def _chunks_65k() -> list[bytes]:
    return [b"data%d" % (2 * i) for i in range(1 << 16)]


def test_65k() -> None:
    chunks = _chunks_65k()
    src = table_source(chunks)
    for c in chunks[::97]:
        assert src.has(Addr.of(c)) and src.get(Addr.of(c)) == c
    for i in range(1 << 16, 1 << 17, 89):
        absent = b"data%d" % (2 * i)
        assert not src.has(Addr.of(absent)) and src.get(Addr.of(absent)) is None


def test_65k_get_many() -> None:
    chunks = _chunks_65k()
    src = table_source(chunks)
    found: dict[bytes, bytes] = {}
    assert src.get_many([Addr.of(c) for c in chunks], found) == []
    assert len(found) == 1 << 16


def test_2k_get_many_common_prefix() -> None:
    def common(data: bytes) -> Addr:
        raw = bytearray(Addr.of(data))
        raw[0:7] = bytes.fromhex("0123456789abcd")
        return Addr(raw)

    chunks = [b"data%d" % (2 * i) for i in range(2048)]
    t = build_table((common(c), c) for c in chunks)
    src = TableChunkSource(t.name, parse_table_index(t.data, "t"), BytesReaderAt(t.data), 4096)
    found: dict[bytes, bytes] = {}
    assert src.get_many([common(c) for c in chunks], found) == []
    assert len(found) == 2048
    assert all(found[common(c)] == c for c in chunks)


def test_empty_writer_is_a_bare_footer() -> None:
    t = TableWriter().finish()
    assert len(t.data) == 20 and t.chunk_count == 0
    assert str(t.name) == "pu1u2dbutusbrsak518dcrc00vb21p05"


def test_empty_chunk_rejected() -> None:
    with pytest.raises(ChunkError):
        TableWriter().add(Addr.of(b""), b"")


def test_equal_prefix_tuples_sorted_by_ordinal() -> None:
    a = Addr(bytes(8) + b"\x02" * 12)
    b = Addr(bytes(8) + b"\x01" * 12)
    t = build_table([(a, b"x"), (b, b"y")])
    index = parse_table_index(t.data, "t")
    assert list(index.ordinals) == [0, 1]
    assert index.lookup(b) == 1 and index.lookup_all(a) == [0]


# --- corruption: typed errors naming the table, never a crash ---------------------------------

def _golden() -> bytes:
    return bytes.fromhex(GOLDEN_HEX)


@pytest.mark.parametrize("cut", [1, 10, 20, 50, 100, 142])
def test_truncated_table_raises_corrupt_table_error(cut: int) -> None:
    data = _golden()[:-cut]
    with pytest.raises(CorruptTableError) as err:
        parse_table_index(data, "uog0qvhml7hmloq557j88qfgeptqpo13", len(data))
    assert "uog0qvhml7hmloq557j88qfgeptqpo13" in str(err.value)


def test_truncated_head_detected_by_file_size() -> None:
    data = _golden()[5:]
    with pytest.raises(CorruptTableError, match="describes 143 bytes"):
        parse_table_index(data, "t", len(data))


def test_flipped_record_byte_fails_crc() -> None:
    data = bytearray(_golden())
    data[3] ^= 0xFF
    src = TableChunkSource(Addr.of(b"t"), parse_table_index(bytes(data), "t"), BytesReaderAt(bytes(data)), 4096)
    with pytest.raises(CorruptTableError, match="CRC"):
        src.get(Addr.of(b"hello2"))
    assert src.get(Addr.of(b"badbye2")) == b"badbye2"


@pytest.mark.parametrize("field,offset", [("ordinal", 39 + 8), ("count", 143 - 20), ("length", 39 + 36)])
def test_corrupt_index_fields_rejected(field: str, offset: int) -> None:
    data = bytearray(_golden())
    data[offset:offset + 4] = (0xFFFFFFF0).to_bytes(4, "big")
    with pytest.raises(CorruptTableError):
        parse_table_index(bytes(data), "t", len(data))


def test_unsorted_prefixes_rejected() -> None:
    data = bytearray(_golden())
    first, second = data[39:51], data[51:63]
    data[39:51], data[51:63] = second, first
    with pytest.raises(CorruptTableError, match="sorted"):
        parse_table_index(bytes(data), "t", len(data))


def test_repeated_ordinal_rejected() -> None:
    data = bytearray(_golden())
    data[51 + 8:51 + 12] = data[39 + 8:39 + 12]  # the second tuple names the first one's ordinal: one is never named
    with pytest.raises(CorruptTableError, match="permutation"):
        parse_table_index(bytes(data), "t", len(data))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=300).flatmap(
    lambda prefixes: st.tuples(st.just(sorted(prefixes)), st.permutations(range(len(prefixes))))))
def test_prefix_map_is_big_endian_tuples_back_to_back_and_parses_back(prefix_map: tuple[list[int], list[int]]) -> None:
    """The index's prefix map (built and read a byte column at a time) is NBS's layout: ``(prefix u64,
    ordinal u32)`` big-endian, one tuple after another."""
    prefixes, ordinals = prefix_map
    count = len(prefixes)
    suffixes = bytes(range(12)) * count
    index = encode_sorted_index(prefixes, ordinals, [5] * count, suffixes, 7 * count)
    assert index[:12 * count] == b"".join(struct.pack(">QI", p, o) for p, o in zip(prefixes, ordinals))
    parsed = parse_table_index(index, "t")
    assert list(parsed.prefixes) == prefixes and list(parsed.ordinals) == ordinals
    assert list(parsed.lengths) == [5] * count and parsed.suffixes == suffixes


def test_zero_chunk_index_rejected() -> None:
    with pytest.raises(CorruptTableError, match="no chunks"):
        parse_table_index(TableWriter().finish().data, "t")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=40, unique=True))
def test_round_trip_any_chunks(chunks: list[bytes]) -> None:
    src = table_source(chunks)
    assert src.count() == len(chunks)
    assert src.uncompressed_len() == sum(map(len, chunks))
    assert [c for _, c in src.extract()] == chunks
    found: dict[bytes, bytes] = {}
    src.get_many([Addr.of(c) for c in chunks], found)
    assert found == {Addr.of(c): c for c in chunks}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=142), st.integers(min_value=1, max_value=255))
def test_fuzzed_table_bytes_never_crash(prefix: bytes, pos: int, xor: int) -> None:
    data = bytearray(_golden())
    data[pos] ^= xor
    blob = bytes(prefix) + bytes(data)
    try:
        index = parse_table_index(blob, "t")
        src = TableChunkSource(Addr.of(b"t"), index, BytesReaderAt(blob[len(prefix):]), 4096)
        for c in TEST_CHUNKS:
            src.get(Addr.of(c))
        list(src.extract())
    except CorruptTableError:
        pass

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbs import errors as nbs_errors
from nbs.addr import Addr
from nbs.errors import CorruptTableError, NBSError, SpecError
from nbs.manifest import ManifestContents, TableSpec
from nbsclient import protocol as p
from nbsd.config import ConfigError


def test_request_round_trip() -> None:
    req = p.decode_request(p.encode_request(42, p.GET, {"handle": 1, "addrs": [b"x" * 20]}))
    assert req == p.Request(42, p.GET, {"handle": 1, "addrs": [b"x" * 20]})


# The wire's error codes: changing any of these changes protocol version 1 (docs/PROTOCOL.md).
PINNED_ERROR_CODES = {
    "BadRequest": "nbsclient.protocol.DaemonError",
    "UnsupportedProtocol": "nbsclient.protocol.DaemonError",
    "InternalError": "nbsclient.protocol.DaemonError",
    "UnknownSession": "nbsclient.protocol.UnknownSessionError",
    "Busy": "nbsclient.protocol.DaemonBusyError",
    "Forbidden": "nbsclient.protocol.ForbiddenError",
    "NBSError": "nbs.errors.NBSError",
    "AddressError": "nbs.errors.AddressError",
    "ChunkError": "nbs.errors.ChunkError",
    "CorruptTableError": "nbs.errors.CorruptTableError",
    "TableNotFoundError": "nbs.errors.TableNotFoundError",
    "UploadError": "nbs.errors.UploadError",
    "ManifestError": "nbs.errors.ManifestError",
    "VersionMismatchError": "nbs.errors.VersionMismatchError",
    "StoreNotFoundError": "nbs.errors.StoreNotFoundError",
    "InvalidStoreNameError": "nbs.errors.InvalidStoreNameError",
    "SpecError": "nbs.errors.SpecError",
    "StoreIOError": "nbs.errors.StoreIOError",
    "StoreLockedError": "nbs.errors.StoreLockedError",
    "StoreClosedError": "nbs.errors.StoreClosedError",
    "StoreFullError": "nbs.errors.StoreFullError",
    "TableCacheError": "nbs.errors.TableCacheError",
    "AWSError": "nbs.errors.AWSError",
    "BucketNotFoundError": "nbs.errors.BucketNotFoundError",
    "DynamoTableNotFoundError": "nbs.errors.DynamoTableNotFoundError",
    "AccessDeniedError": "nbs.errors.AccessDeniedError",
    "TableAccessDeniedError": "nbs.errors.TableAccessDeniedError",
    "CredentialsError": "nbs.errors.CredentialsError",
    "AWSUnavailableError": "nbs.errors.AWSUnavailableError",
}


def test_error_codes_are_pinned() -> None:
    assert {code: f"{cls.__module__}.{cls.__qualname__}" for code, cls in p.ERROR_CODES.items()} == PINNED_ERROR_CODES


def test_protocol_document_lists_the_same_codes() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()
    section = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \|", section, re.MULTILINE)
    assert dict(rows) == {code: cls.__name__ for code, cls in p.ERROR_CODES.items()}


def test_every_library_error_has_a_code_and_new_subclasses_use_their_base_code() -> None:
    library = {cls for cls in vars(nbs_errors).values() if isinstance(cls, type) and issubclass(cls, NBSError)}
    assert library <= set(p.ERROR_CODES.values()) | set(p.BUSY_ERRORS)

    class RenamedSpecError(SpecError):
        pass

    assert p.error_kind(RenamedSpecError("x")) == "SpecError" and p.error_kind(ConfigError("x")) == "NBSError"


@pytest.mark.parametrize("code", sorted(PINNED_ERROR_CODES))
def test_each_code_comes_back_as_its_class_with_the_message_once(code: str) -> None:
    _, _, err = p.decode_reply(p.encode_error(9, code, "the reason"))
    assert type(err) is p.ERROR_CODES[code] and p.error_kind(err) == code
    assert str(err) == (f"{code}: the reason" if type(err) is p.DaemonError else "the reason")


def test_reply_and_typed_errors() -> None:
    assert p.decode_reply(p.encode_reply(3, {"a": b"b"})) == (3, {"a": b"b"}, None)
    rid, body, err = p.decode_reply(p.encode_error(4, "SpecError", "bad spec"))
    assert rid == 4 and body is None and isinstance(err, SpecError) and str(err) == "bad spec"
    _, _, err = p.decode_reply(p.encode_error(5, "CorruptTableError", "table x: broken"))
    assert isinstance(err, CorruptTableError) and "broken" in str(err)
    _, _, err = p.decode_reply(p.encode_error(6, p.UNKNOWN_SESSION, "gone"))
    assert isinstance(err, p.UnknownSessionError)
    _, _, err = p.decode_reply(p.encode_error(7, "SomethingNew", "?"))
    assert type(err) is p.DaemonError and err.kind == "SomethingNew"
    assert p.error_kind(SpecError("x")) == "SpecError" and p.error_kind(ValueError()) == p.INTERNAL


@pytest.mark.parametrize("frame,error", [
    (b"\xc1", p.ProtocolError), (p.pack("text"), p.ProtocolError), (p.pack([1, "id", "get", {}]), p.ProtocolError),
    (p.pack([2, 1, "get", {}]), p.UnsupportedProtocolError), (p.pack([1, 1, "nope", {}]), p.BadRequestError),
    (p.pack([1, 1, "get", []]), p.BadRequestError), (p.pack([1, True, "get", {}]), p.ProtocolError),
])
def test_malformed_requests(frame: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        p.decode_request(frame)


def test_size_limits_apply() -> None:
    with pytest.raises(p.ProtocolError):
        p.decode_request(p.encode_request(1, p.WRITE_TABLE, {"data": b"x" * 5000}), max_size=1000)


def test_an_attachment_becomes_the_data_of_an_operation_that_takes_one() -> None:
    attachment = memoryview(b"chunk bytes")
    request = p.decode_request(p.encode_request(5, p.TABLE_CHUNKS, {"upload": 1}), attachment=attachment)
    assert request.body["data"] is attachment and request.body["upload"] == 1


@pytest.mark.parametrize("frame", [
    p.encode_request(5, p.HELLO, {}),  # takes no attachment
    p.encode_request(5, p.TABLE_CHUNKS, {"data": b"x"}),  # data twice
])
def test_an_attachment_where_none_belongs_is_a_bad_request_naming_its_id(frame: bytes) -> None:
    with pytest.raises(p.BadRequestError) as caught:
        p.decode_request(frame, attachment=memoryview(b"x"))
    assert caught.value.request_id == 5


def test_an_attachment_to_a_compact_get_or_past_the_size_limit_is_refused() -> None:
    with pytest.raises(p.ProtocolError, match="compact get takes no attachment"):
        p.decode_request(p.encode_get_one(5, 1, b"a" * 20), attachment=memoryview(b"x"))
    frame = p.encode_request(5, p.TABLE_CHUNKS, {})
    with pytest.raises(p.ProtocolError, match="exceeds the limit"):
        p.decode_request(frame, max_size=len(frame) + 9, attachment=memoryview(bytes(10)))
    assert p.decode_request(frame, max_size=len(frame) + 10, attachment=memoryview(bytes(10))).body["data"]


def test_contents_codec() -> None:
    c = ManifestContents("7.18", Addr.of(b"l"), Addr.of(b"r"), (TableSpec(Addr.of(b"t"), 3),))
    assert p.decode_contents(p.unpack(p.pack(p.encode_contents(c)))) == c
    for bad in [None, {"vers": "7.18"}, {**p.encode_contents(c), "lock": b"short"},
                {**p.encode_contents(c), "specs": [[b"x", 1]]}]:
        with pytest.raises(p.ProtocolError):
            p.decode_contents(bad)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_decoder_fuzz_raises_only_protocol_errors(blob: bytes) -> None:
    try:
        p.decode_request(blob)
    except p.ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=30)
                    | st.text(max_size=10),
                    lambda children: st.lists(children, max_size=5)
                    | st.dictionaries(st.text(max_size=5), children, max_size=5), max_leaves=20))
def test_structured_garbage_never_escapes_as_other_errors(value: object) -> None:
    try:
        req = p.decode_request(p.pack(value))
        p.decode_addrs(req.body.get("addrs", []))
        p.decode_packed_addrs(req.body.get("addrs", b""))
        p.decode_specs(req.body.get("novel", []))
    except NBSError:
        pass


def test_packed_addresses_are_whole_addresses_back_to_back() -> None:
    addrs = [Addr.of(b"a"), Addr.of(b"b")]
    decoded = p.decode_packed_addrs(b"".join(addrs))
    assert decoded == addrs and all(type(a) is Addr for a in decoded)
    assert p.decode_packed_addrs(b"") == []
    for bad in (b"".join(addrs)[:-1], None, [bytes(addrs[0])], bytearray(20)):
        with pytest.raises(p.ProtocolError, match="20 per address"):
            p.decode_packed_addrs(bad)


def test_compact_get_round_trip() -> None:
    addr = bytes(range(20))
    frame = p.encode_get_one(2**64 - 1, 7, addr)
    assert frame[0] == p.COMPACT and len(frame) == 38
    assert p.decode_get_one(frame) == (2**64 - 1, 7, addr)
    assert p.decode_request(frame) == p.Request(2**64 - 1, p.GET, {"handle": 7, "addrs": [addr]}, compact=True)


def test_compact_reply_round_trip() -> None:
    assert p.decode_reply(p.encode_got_one(9, b"chunk")) == (9, b"chunk", None)
    assert p.decode_reply(p.encode_got_one(9, b"")) == (9, b"", None)  # an empty chunk is found, not absent
    assert p.decode_reply(p.encode_got_one(10, None)) == (10, None, None)


@pytest.mark.parametrize("frame,error,request_id", [
    (p.encode_get_one(5, 1, b"a" * 20)[:-1], p.BadRequestError, 5),  # one byte short
    (p.encode_get_one(5, 1, b"a" * 20) + b"x", p.BadRequestError, 5),  # one byte long
    (b"\xc1\x01\x05", p.BadRequestError, 0),  # too short to hold an id
    (bytes((p.COMPACT, p.PROTOCOL_VERSION + 1)) + p.encode_get_one(6, 1, b"a" * 20)[2:], p.UnsupportedProtocolError, 6),
])
def test_malformed_compact_gets(frame: bytes, error: type[p.BadRequestError], request_id: int) -> None:
    with pytest.raises(error) as raised:
        p.decode_request(frame)
    assert type(raised.value) is error and raised.value.request_id == request_id


@pytest.mark.parametrize("frame", [
    b"\xc1", p.encode_got_one(1, None)[:-1],  # too short
    p.encode_got_one(1, None) + b"x",  # absent yet carrying bytes
    bytes((p.COMPACT, p.PROTOCOL_VERSION + 1)) + p.encode_got_one(1, b"c")[2:],  # another version
])
def test_malformed_compact_replies(frame: bytes) -> None:
    with pytest.raises(p.ProtocolError):
        p.decode_reply(frame)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_compact_decoder_fuzz_raises_only_protocol_errors(tail: bytes) -> None:
    for decode in (p.decode_request, p.decode_reply):
        try:
            decode(bytes((p.COMPACT,)) + tail)
        except p.ProtocolError:
            pass

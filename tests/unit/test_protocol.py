import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbs.addr import Addr
from nbs.errors import CorruptTableError, NBSError, SpecError
from nbs.manifest import ManifestContents, TableSpec
from nbsclient import protocol as p


def test_request_round_trip() -> None:
    req = p.decode_request(p.encode_request(42, p.GET, {"handle": 1, "addrs": [b"x" * 20]}))
    assert req == p.Request(42, p.GET, {"handle": 1, "addrs": [b"x" * 20]})


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
@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=30) | st.text(max_size=10),
                    lambda children: st.lists(children, max_size=5)
                    | st.dictionaries(st.text(max_size=5), children, max_size=5), max_leaves=20))
def test_structured_garbage_never_escapes_as_other_errors(value: object) -> None:
    try:
        req = p.decode_request(p.pack(value))
        p.decode_addrs(req.body.get("addrs", []))
        p.decode_specs(req.body.get("novel", []))
    except NBSError:
        pass

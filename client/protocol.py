"""The nbsd wire protocol: one msgpack frame per request and per reply over ZeroMQ.

Request: ``[PROTOCOL_VERSION, request_id, op, body]``; reply:
``[PROTOCOL_VERSION, request_id, status, body]`` with status ``"ok"`` or
``"error"`` (body ``{"type": ..., "message": ...}``).  Binary values are
msgpack ``bin``.  A get of one chunk, the request a cache miss of a single
read sends, also has a fixed binary layout (``encode_get_one``).
docs/PROTOCOL.md describes every operation.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from typing import Any, NamedTuple, TypeVar

import msgpack

from nbs import errors as nbs_errors
from nbs.addr import ADDR_SIZE, Addr, unpack_addrs
from nbs.manifest import ManifestContents, TableSpec

PROTOCOL_VERSION = 1
OK = "ok"
ERROR = "error"

# Operations.
HELLO = "hello"
OPEN = "open"
CLOSE = "close"
GET = "get"
HAS = "has"
WRITE_TABLE = "write_table"
TABLE_BEGIN = "table_begin"
TABLE_PART = "table_part"
TABLE_CHUNKS = "table_chunks"
TABLE_END = "table_end"
COMMIT = "commit"
REBASE = "rebase"
COUNT = "count"
REPORT = "report"
STATS = "stats"
OPS = frozenset({HELLO, OPEN, CLOSE, GET, HAS, WRITE_TABLE, TABLE_BEGIN, TABLE_PART, TABLE_CHUNKS, TABLE_END, COMMIT,
                 REBASE, COUNT, REPORT, STATS})
# Operations whose ``data`` may travel as an attachment: a second frame of raw bytes, which the daemon
# reads in place (no copy into a msgpack value, which costs its main thread as much as the rest of a write).
ATTACHING_OPS = frozenset({TABLE_CHUNKS})
UPLOAD_PART_OPS = frozenset({TABLE_PART, TABLE_CHUNKS})  # parts of an upload, placed in sequence order

# Error codes of the protocol's own conditions (the full table is ERROR_CODES).
UNKNOWN_SESSION = "UnknownSession"
BAD_REQUEST = "BadRequest"
UNSUPPORTED_PROTOCOL = "UnsupportedProtocol"
BUSY = "Busy"
FORBIDDEN = "Forbidden"
INTERNAL = "InternalError"

DEFAULT_MAX_MESSAGE = 256 << 20
ENDPOINT_ENV = "NBSD_ENDPOINT"
MAX_ADDRS_PER_REQUEST = 4096


SYSTEM_SOCKET = "/run/nbsd/nbsd.sock"
T = TypeVar("T")


def default_endpoint() -> str:
    """``$NBSD_ENDPOINT``, else the system daemon's socket: the same for root and every other user."""
    return os.environ.get(ENDPOINT_ENV) or f"ipc://{SYSTEM_SOCKET}"


class ProtocolError(nbs_errors.NBSError):
    """A frame that does not follow the protocol."""


class DaemonError(nbs_errors.NBSError):
    """An error reported by nbsd; ``kind`` is its wire code, ``message`` the daemon's text.

    Only this base class, raised for codes without a class of their own, shows
    its code in the text (``BadRequest: ...``): a subclass's name already says it.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}" if type(self) is DaemonError else message)
        self.kind = kind
        self.message = message

    def __reduce__(self) -> tuple[type[DaemonError], tuple[str, str]]:
        """Pickle by code and message (pools send exceptions between processes), not by the formatted text."""
        return type(self), (self.kind, self.message)


class UnknownSessionError(DaemonError):
    """The daemon does not know the session (it restarted, or the session expired)."""


class DaemonBusyError(DaemonError):
    """The daemon refused the request for now (too much in flight from this client)."""


class ForbiddenError(DaemonError):
    """The daemon's policy forbids the request (e.g. a local store outside its roots)."""


class DaemonUnavailableError(nbs_errors.NBSError):
    """No reply from the daemon within the timeout, after every retry."""


class ClientConfigError(nbs_errors.NBSError, ValueError):
    """A client setting (argument or environment variable) that cannot be used."""


class DaemonNotRunningError(DaemonUnavailableError):
    """No daemon listens at the endpoint: its socket file is missing, or nothing accepts on it."""


class StaleSocketError(DaemonNotRunningError):
    """The socket file exists but nothing accepts on it: a daemon died without removing it (or is restarting)."""


class DaemonPermissionError(DaemonUnavailableError):
    """The socket exists but this user may not connect to it; ``group`` is the group that may."""

    def __init__(self, message: str, group: str) -> None:
        super().__init__(message)
        self.group = group

    def __reduce__(self) -> tuple[type[DaemonPermissionError], tuple[str, str]]:
        return type(self), (str(self), self.group)


class DaemonNotAnsweringError(DaemonUnavailableError):
    """The daemon did not answer a greeting within the connect timeout (hung, stopped, or overloaded)."""


# The wire's error codes and the class a client raises for each (docs/PROTOCOL.md, "Error codes").  Fixed
# strings, never derived from class names, so renaming a class leaves the protocol alone.  The codes mapped
# to DaemonError report a bug or a version mismatch, which no caller handles by type.
ERROR_CODES: dict[str, type[nbs_errors.NBSError]] = {
    BAD_REQUEST: DaemonError,
    UNSUPPORTED_PROTOCOL: DaemonError,
    INTERNAL: DaemonError,
    UNKNOWN_SESSION: UnknownSessionError,
    BUSY: DaemonBusyError,
    FORBIDDEN: ForbiddenError,
    "NBSError": nbs_errors.NBSError,
    "AddressError": nbs_errors.AddressError,
    "ChunkError": nbs_errors.ChunkError,
    "CorruptTableError": nbs_errors.CorruptTableError,
    "TableNotFoundError": nbs_errors.TableNotFoundError,
    "UploadError": nbs_errors.UploadError,
    "ManifestError": nbs_errors.ManifestError,
    "VersionMismatchError": nbs_errors.VersionMismatchError,
    "StoreNotFoundError": nbs_errors.StoreNotFoundError,
    "InvalidStoreNameError": nbs_errors.InvalidStoreNameError,
    "SpecError": nbs_errors.SpecError,
    "StoreIOError": nbs_errors.StoreIOError,
    "StoreLockedError": nbs_errors.StoreLockedError,
    "StoreClosedError": nbs_errors.StoreClosedError,
    "StoreFullError": nbs_errors.StoreFullError,
    "TableCacheError": nbs_errors.TableCacheError,
    "AWSError": nbs_errors.AWSError,
    "BucketNotFoundError": nbs_errors.BucketNotFoundError,
    "DynamoTableNotFoundError": nbs_errors.DynamoTableNotFoundError,
    "AccessDeniedError": nbs_errors.AccessDeniedError,
    "TableAccessDeniedError": nbs_errors.TableAccessDeniedError,
    "CredentialsError": nbs_errors.CredentialsError,
    "AWSUnavailableError": nbs_errors.AWSUnavailableError,
}
# Library errors sent as a protocol condition's code: refused for now, as a request too many is (clients back off).
BUSY_ERRORS: dict[type[nbs_errors.NBSError], str] = {nbs_errors.UploadBusyError: BUSY,
                                                      nbs_errors.UploadMemoryFullError: BUSY}
_CODE_OF = {**{cls: code for code, cls in ERROR_CODES.items() if cls is not DaemonError}, **BUSY_ERRORS}


def pack(message: Any) -> bytes:
    return msgpack.packb(message, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(frame: bytes, max_size: int = DEFAULT_MAX_MESSAGE) -> Any:
    """Decode a frame; anything that is not msgpack raises ``ProtocolError``.

    msgpack bounds every length it reads by the frame's own size, so no value
    can claim more memory than the frame holds.
    """
    if len(frame) > max_size:
        raise ProtocolError(f"frame of {len(frame)} bytes exceeds the limit {max_size}")
    try:
        return msgpack.unpackb(frame, strict_map_key=False)
    except Exception as err:  # msgpack raises several unrelated types for bad input
        raise ProtocolError(f"undecodable frame: {err}") from err


class Request(NamedTuple):
    request_id: int
    op: str
    body: dict[str, Any]
    compact: bool = False  # came as a compact get, so the reply is one too


def encode_request(request_id: int, op: str, body: dict[str, Any]) -> bytes:
    return pack([PROTOCOL_VERSION, request_id, op, body])


def decode_request(frame: bytes, max_size: int = DEFAULT_MAX_MESSAGE, attachment: memoryview | None = None
                   ) -> Request:
    """Validate the envelope; the request id is recovered even when the rest is bad, for the reply.

    An ``attachment`` (the request's second frame) becomes the body's ``data``,
    for the operations that take one (``ATTACHING_OPS``).
    """
    if frame[:1] == COMPACT_MARK:
        if attachment is not None:
            raise ProtocolError("a compact get takes no attachment")
        request_id, handle, addr = decode_get_one(frame)
        return Request(request_id, GET, {"handle": handle, "addrs": [addr]}, True)
    size = len(frame) + (0 if attachment is None else len(attachment))
    if size > max_size:
        raise ProtocolError(f"request of {size} bytes exceeds the limit {max_size}")
    message = unpack(frame, max_size)
    if not isinstance(message, list) or len(message) != 4:
        raise ProtocolError("a request is [version, id, op, body]")
    version, request_id, op, body = message
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise ProtocolError("request id must be an integer")
    if version != PROTOCOL_VERSION:
        raise UnsupportedProtocolError(request_id, version)
    if not isinstance(op, str) or op not in OPS:
        raise BadRequestError(request_id, f"unknown operation {op!r}")
    if not isinstance(body, dict):
        raise BadRequestError(request_id, "request body must be a map")
    if attachment is not None:
        if op not in ATTACHING_OPS:
            raise BadRequestError(request_id, f"{op!r} takes no attachment")
        if "data" in body:
            raise BadRequestError(request_id, f"{op!r} has its data in the body or attached, not both")
        body["data"] = attachment
    return Request(request_id, op, body)


class BadRequestError(ProtocolError):
    def __init__(self, request_id: int, message: str) -> None:
        super().__init__(message)
        self.request_id = request_id


class UnsupportedProtocolError(BadRequestError):
    def __init__(self, request_id: int, version: object) -> None:
        super().__init__(request_id,
                         f"protocol version {version!r} is not supported (daemon speaks {PROTOCOL_VERSION})")


# --- the compact get of one chunk --------------------------------------------------------------
#
# request: COMPACT, version, request id (u64), session handle (u64), address (20 bytes)
# reply:   COMPACT, version, request id (u64), found (0 or 1), the chunk's bytes when found
# Integers are little-endian.  Errors are ordinary msgpack error replies.

COMPACT = 0xC1  # the one byte msgpack never uses, so a compact frame cannot be mistaken for msgpack
COMPACT_MARK = bytes((COMPACT,))  # a frame's first byte, compared as a one-byte slice
_GET_ONE = struct.Struct("<BBQQ20s")
_GOT_ONE = struct.Struct("<BBQ?")


def encode_get_one(request_id: int, handle: int, addr: bytes) -> bytes:
    return _GET_ONE.pack(COMPACT, PROTOCOL_VERSION, request_id, handle, addr)


def decode_get_one(frame: bytes) -> tuple[int, int, bytes]:
    """``(request_id, handle, address)`` of a compact get; the id is kept for the error reply."""
    if len(frame) != _GET_ONE.size:
        request_id = int.from_bytes(frame[2:10], "little") if len(frame) >= 10 else 0
        raise BadRequestError(request_id, f"a compact get is {_GET_ONE.size} bytes, not {len(frame)}")
    _, version, request_id, handle, addr = _GET_ONE.unpack(frame)
    if version != PROTOCOL_VERSION:
        raise UnsupportedProtocolError(request_id, version)
    return request_id, handle, addr


def got_one_prefix(request_id: int) -> bytes:
    """The start of a compact reply that found its chunk; the chunk's bytes follow it."""
    return _GOT_ONE.pack(COMPACT, PROTOCOL_VERSION, request_id, True)


def encode_got_one(request_id: int, chunk: bytes | None) -> bytes:
    if chunk is None:
        return _GOT_ONE.pack(COMPACT, PROTOCOL_VERSION, request_id, False)
    return got_one_prefix(request_id) + chunk


def encode_reply(request_id: int, body: Any) -> bytes:
    return pack([PROTOCOL_VERSION, request_id, OK, body])


def encode_error(request_id: int, kind: str, message: str) -> bytes:
    return pack([PROTOCOL_VERSION, request_id, ERROR, {"type": kind, "message": message}])


def decode_reply(frame: bytes) -> tuple[int, Any, Exception | None]:
    """``(request_id, body, error)``: ``error`` is the typed exception of an error reply.

    The body of a compact reply is the chunk, or None when the store lacks it.
    """
    if frame[:1] == COMPACT_MARK:
        if len(frame) < _GOT_ONE.size:
            raise ProtocolError("malformed compact reply from the daemon")
        _, version, request_id, found = _GOT_ONE.unpack_from(frame)
        if version != PROTOCOL_VERSION or (not found and len(frame) > _GOT_ONE.size):
            raise ProtocolError("malformed compact reply from the daemon")
        return request_id, frame[_GOT_ONE.size:] if found else None, None
    message = unpack(frame)
    if not isinstance(message, list) or len(message) != 4 or message[0] != PROTOCOL_VERSION:
        raise ProtocolError("malformed reply from the daemon")
    _, request_id, status, body = message
    if status == OK:
        return request_id, body, None
    if not isinstance(body, dict):
        raise ProtocolError("malformed error reply from the daemon")
    return request_id, None, error_from_reply(str(body.get("type")), str(body.get("message")))


def error_from_reply(kind: str, message: str) -> Exception:
    """Rebuild a typed exception from an error reply (unknown codes become ``DaemonError``)."""
    cls = ERROR_CODES.get(kind, DaemonError)
    if issubclass(cls, DaemonError):
        return cls(kind, message)
    # Rebuild without the class's own __init__ (its arguments are not on the wire).
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    return err


def error_kind(err: BaseException) -> str:
    """The code sent for an exception raised while serving a request: its class's, or its nearest base's."""
    if isinstance(err, DaemonError):
        return err.kind
    for cls in type(err).__mro__:
        code = _CODE_OF.get(cls)
        if code is not None:
            return code
    return INTERNAL


# --- field codecs ---------------------------------------------------------------------------------

def reply_field(reply: Any, name: str, kind: type[T], op: str, default: T | None = None) -> T:
    """Field ``name`` of the daemon's reply to ``op``, which must be a ``kind`` (an ``int`` is never a ``bool``);
    ``default`` stands for a field the reply may leave out.

    A reply lacking the field, or holding something else, is a
    ``ProtocolError`` naming it: not a ``KeyError`` deep in the client, nor a
    wrong value handed on to the caller (a daemon of another version, or a bug).
    """
    if not isinstance(reply, dict):
        raise ProtocolError(f"the daemon's {op} reply is not a map")
    value = reply.get(name, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"the daemon's {op} reply has no {kind.__name__} {name!r}")
    return value


def optional_field(reply: Any, name: str, kind: type[T], op: str) -> T | None:
    """``reply_field`` of a field the daemon may leave out or set to nil (a feature it does not offer)."""
    if isinstance(reply, dict) and reply.get(name) is None:
        return None
    return reply_field(reply, name, kind, op)


def decode_found(reply: Any) -> dict[bytes, bytes]:
    """A get reply's chunks by address, each checked to be bytes before any reaches the caller."""
    found = reply_field(reply, "found", dict, GET)
    if not all(type(chunk) is bytes for chunk in found.values()):
        raise ProtocolError("the daemon's get reply has a chunk that is not bytes")
    return found


def decode_table_spec(reply: Any, op: str) -> TableSpec:
    """The table a reply names (``name``, ``count``)."""
    return decode_specs([[reply_field(reply, "name", bytes, op), reply_field(reply, "count", int, op)]])[0]


def encode_specs(specs: tuple[TableSpec, ...] | list[TableSpec]) -> list[list[Any]]:
    return [[bytes(s.name), s.chunk_count] for s in specs]


def decode_specs(raw: Any) -> tuple[TableSpec, ...]:
    if not isinstance(raw, list):
        raise ProtocolError("table specs must be a list")
    try:
        return tuple(TableSpec(Addr(name), int(count)) for name, count in raw)
    except (TypeError, ValueError, nbs_errors.AddressError) as err:
        raise ProtocolError(f"bad table spec: {err}") from err


def encode_contents(c: ManifestContents) -> dict[str, Any]:
    return {"vers": c.vers, "lock": bytes(c.lock), "root": bytes(c.root), "specs": encode_specs(c.specs)}


def decode_contents(raw: Any) -> ManifestContents:
    if not isinstance(raw, dict):
        raise ProtocolError("manifest contents must be a map")
    try:
        return ManifestContents(str(raw["vers"]), Addr(raw["lock"]), Addr(raw["root"]),
                                decode_specs(raw["specs"]))
    except (KeyError, TypeError, nbs_errors.AddressError) as err:
        raise ProtocolError(f"bad manifest contents: {err}") from err


def decode_addrs(raw: Any) -> list[bytes]:
    if not isinstance(raw, list) or len(raw) > MAX_ADDRS_PER_REQUEST:
        raise ProtocolError(f"addresses must be a list of at most {MAX_ADDRS_PER_REQUEST}")
    for a in raw:
        if type(a) is not bytes or len(a) != 20:
            raise ProtocolError("every address must be 20 bytes")
    return raw


def decode_packed_addrs(raw: Any) -> list[Addr]:
    """Addresses sent back to back in one byte string (a ``table_chunks`` reply's)."""
    if type(raw) is not bytes or len(raw) % ADDR_SIZE:
        raise ProtocolError(f"packed addresses must be bytes, {ADDR_SIZE} per address")
    return unpack_addrs(raw)


def encode_lengths(lengths: list[int]) -> bytes:
    """Record lengths as the index stores them: u32 big-endian each."""
    values = array("I", lengths)
    if sys.byteorder == "little":
        values.byteswap()
    return values.tobytes()


def decode_lengths(raw: Any) -> list[int]:
    if type(raw) is not bytes or len(raw) % 4:
        raise ProtocolError("record lengths must be u32 big-endian bytes")
    values = array("I")
    values.frombytes(raw)
    if sys.byteorder == "little":
        values.byteswap()
    return values.tolist()

"""Noms values from plain Python data, for library users.

``to_value`` maps ``bool``, ``int``/``float``, ``str``, ``bytes`` (a Blob),
``list``/``tuple`` (a List), ``dict`` (a Map), ``set``/``frozenset`` (a Set)
and Noms values (kept) recursively; a ``Struct`` is built with its
constructor.  Collections are chunked into the store as they are built, so
large ones never need a second pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from nbs.noms.chunker import ValueWriter, new_blob, new_list, new_map, new_set
from nbs.noms.errors import EncodeError
from nbs.noms.values import Blob, Bool, Number, String, Value

READ_SIZE = 1 << 20

PyValue = object


def to_value(store: ValueWriter, obj: PyValue) -> Value:
    """The Noms value for ``obj`` (see the module docstring)."""
    if isinstance(obj, Value):
        return obj
    if isinstance(obj, bool):
        return Bool(obj)
    if isinstance(obj, (int, float)):
        return Number(obj)
    if isinstance(obj, str):
        return String(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return new_blob(store, bytes(obj))
    if isinstance(obj, (list, tuple)):
        return new_list(store, [to_value(store, item) for item in obj])
    if isinstance(obj, dict):
        return new_map(store, [(to_value(store, k), to_value(store, v)) for k, v in obj.items()])
    if isinstance(obj, (set, frozenset)):
        return new_set(store, [to_value(store, item) for item in obj])
    raise EncodeError(f"cannot make a Noms value of {type(obj).__name__}")


def blob_from_stream(store: ValueWriter, stream: BinaryIO) -> Blob:
    """A Blob of everything ``stream`` yields, read and chunked 1 MiB at a time."""
    def pieces() -> Iterator[bytes]:
        while piece := stream.read(READ_SIZE):
            yield piece
    return new_blob(store, pieces())


def blob_from_file(store: ValueWriter, path: str) -> Blob:
    with open(path, "rb") as f:
        return blob_from_stream(store, f)

"""A session's tables being streamed in (``table_begin``, ``table_chunks`` or ``table_part``, ``table_end``).

Uploads belong to their session: closing or expiring the session discards
them, temp files and memory with them, and so does any failed part (the
client then sends the table again whole).  A session holds at most
``MAX_UPLOADS`` at once; beginning one more discards the oldest, which only a
client that gave up on it can have left.  The outcome of the last few ends is
kept, so a ``table_end`` resent after a lost reply gets the same answer, and
so is why the last few were discarded: a part still in flight behind the one
that failed gets its cause and type (``Busy`` stays ``Busy``), whichever reply
the client reads first.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from nbs.errors import UploadError
from nbs.manifest import TableSpec
from nbs.table_upload import TableUpload, error_after

MAX_UPLOADS = 4
REMEMBERED_ENDS = 8
REMEMBERED_DISCARDS = 8
T = TypeVar("T")


class SessionUploads:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[int, TableUpload] = OrderedDict()
        self._ended: OrderedDict[int, Future[TableSpec]] = OrderedDict()
        self._causes: OrderedDict[int, BaseException] = OrderedDict()  # why recent uploads were discarded

    def begin(self, upload: TableUpload) -> int:
        """Register ``upload``; its id, for the parts and the end."""
        evicted = None
        with self._lock:
            upload_id = secrets.randbits(63)
            while upload_id in self._open or upload_id in self._ended:
                upload_id = secrets.randbits(63)
            if len(self._open) >= MAX_UPLOADS:
                evicted = self._open.popitem(last=False)[1]
            self._open[upload_id] = upload
        if evicted is not None:
            evicted.discard()
        return upload_id

    def add_part(self, upload_id: int, seq: int, offset: int, pieces: Sequence[bytes], addrs: bytes,
                 lengths: Sequence[int]) -> None:
        """``TableUpload.add_part``; a part that fails ends the upload (its later parts find it unknown)."""
        self._add(upload_id, lambda upload: upload.add_part(seq, offset, pieces, addrs, lengths))

    def add_chunks(self, upload_id: int, seq: int, data: bytes | memoryview, lengths: Sequence[int]) -> list[bytes]:
        """``TableUpload.add_chunks``; a part that fails ends the upload, as in ``add_part``."""
        return self._add(upload_id, lambda upload: upload.add_chunks(seq, data, lengths))

    def _add(self, upload_id: int, add: Callable[[TableUpload], T]) -> T:
        upload = self._find(upload_id)
        try:
            return add(upload)
        except BaseException as err:
            self.discard(upload_id, err)
            raise

    def end(self, upload_id: int, finish: Callable[[TableUpload], TableSpec], wait: float) -> TableSpec:
        """``finish(upload)``, once: a resent end waits up to ``wait`` seconds for the first one's outcome."""
        with self._lock:
            ending = self._ended.get(upload_id)
            upload = self._open.pop(upload_id, None) if ending is None else None
            if ending is None:
                if upload is None:
                    raise self._unknown(upload_id)
                ending = self._ended[upload_id] = Future()
                while len(self._ended) > REMEMBERED_ENDS:
                    self._ended.popitem(last=False)
        if upload is None:
            try:
                return ending.result(wait)
            except FutureTimeout:
                raise UploadError(f"upload {upload_id} is still ending after {wait:g}s") from None
        try:
            spec = finish(upload)
        except BaseException as err:
            upload.discard()
            ending.set_exception(err)
            raise
        ending.set_result(spec)
        return spec

    def discard(self, upload_id: int, cause: BaseException | None = None) -> None:
        upload = self.take(upload_id, cause)
        if upload is not None:
            upload.discard(cause)

    def take(self, upload_id: int, cause: BaseException | None = None) -> TableUpload | None:
        """Remove the open upload ``upload_id`` without discarding it (the caller does, where it may block); its
        later parts are told ``cause``."""
        with self._lock:
            upload = self._open.pop(upload_id, None)
            if upload is not None and cause is not None:
                self._causes[upload_id] = cause
                while len(self._causes) > REMEMBERED_DISCARDS:
                    self._causes.popitem(last=False)
            return upload

    def discard_all(self) -> None:
        """Drop every upload not yet ending (the session is closing)."""
        with self._lock:
            uploads = list(self._open.values())
            self._open.clear()
        for upload in uploads:
            upload.discard()

    def __len__(self) -> int:
        return len(self._open)

    def _find(self, upload_id: int) -> TableUpload:
        with self._lock:
            upload = self._open.get(upload_id)
            if upload is None:
                raise self._unknown(upload_id)
        return upload

    def _unknown(self, upload_id: int) -> UploadError:
        """The error for a part or end of an upload not open (lock held): why it was discarded, if known."""
        cause = self._causes.get(upload_id)
        if cause is not None:
            return error_after(f"upload {upload_id} was discarded", cause)
        return UploadError(f"no upload {upload_id} in this session (ended, discarded after a bad part, or from "
                           "before a restart of the daemon)")

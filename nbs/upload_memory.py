"""The memory that tables received in parts hold until their end, bounded across the process.

A store that cannot put a part where it will stay (AWS, mem) keeps a received
table's records in memory until the table ends (``MemoryUploadSink``).  Each
upload has its own bound (``MAX_MEMORY_UPLOAD``), but nbsd receives tables from
many clients at once, and without a bound on their sum a burst of writers can
grow the daemon past what its host has.  ``UPLOAD_MEMORY`` is that bound;
nbsd sets it from ``upload_memory``.  A part that would pass it is refused
with ``UploadMemoryFullError`` (an ``UploadBusyError``: nbsd answers ``Busy``): its upload ends and
frees what it held, and the client sends the table again after a pause.  A
table that would pass the bound on its own can never fit, and is refused
with a plain ``UploadError``.
"""

from __future__ import annotations

import threading

from nbs.errors import UploadError, UploadMemoryFullError
from nbs.forksafe import register


class UploadMemory:
    """Bytes held by received tables against a limit (None: no limit beyond each upload's own)."""

    def __init__(self, limit: int | None = None) -> None:
        self._lock = threading.Lock()
        self.limit = limit
        self.held = 0
        self.refusals = 0
        register(self)

    def after_fork_in_child(self) -> None:
        """A child holds none of its parent's uploads."""
        self._lock = threading.Lock()
        self.held = 0

    def reserve(self, size: int, own: int) -> None:
        """Count ``size`` more bytes for an upload that holds ``own`` already, or refuse them."""
        with self._lock:
            limit = self.limit
            if limit is not None and self.held + size > limit:
                if own + size > limit:
                    raise UploadError(f"a table held in memory while it is received may not pass this process's "
                                      f"upload memory limit of {limit} bytes (upload_memory)")
                self.refusals += 1
                raise UploadMemoryFullError(f"tables held in memory while they are received would pass this "
                                            f"process's limit ({self.held} of {limit} bytes held, upload_memory); "
                                            f"send the table again later")
            self.held += size

    def release(self, size: int) -> None:
        with self._lock:
            self.held -= size


UPLOAD_MEMORY = UploadMemory()

"""Counts of the daemon's S3 and DynamoDB calls, by service and operation, taken from botocore's events.

A handler on the boto3 session of every AWS store the daemon opens sees each
API call once it ends (``after-call``, or ``after-call-error`` when no answer
came): one count per call, whatever botocore's retries did inside it.  A call
ends in error when AWS answered with an error status or none came; the error
is kept with its AWS code (``ConditionalCheckFailedException`` is a commit
that lost a race, ``NoSuchKey`` a missing table) so alerts can tell normal
outcomes from trouble.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # boto3 loads only when an AWS store is opened
    import boto3

ServiceOp = tuple[str, str]


class BackendCalls:
    def __init__(self) -> None:
        self.requests: Counter[ServiceOp] = Counter()
        self.errors: Counter[tuple[str, str, str]] = Counter()  # (service, operation, code)
        self._lock = threading.Lock()

    def watch(self, session: boto3.Session) -> None:
        """Count the calls of every client made from ``session`` from now on."""
        session.events.register("after-call", self._after_call)
        session.events.register("after-call-error", self._after_call_error)

    def _after_call(self, event_name: str, http_response: Any = None, parsed: Any = None, **_: Any) -> None:
        status = getattr(http_response, "status_code", 200)
        code = ""
        if status >= 300:
            error = parsed.get("Error", {}) if isinstance(parsed, dict) else {}
            code = str(error.get("Code") or f"HTTP {status}")
        self._count(event_name, code)

    def _after_call_error(self, event_name: str, exception: BaseException | None = None, **_: Any) -> None:
        self._count(event_name, type(exception).__name__ if exception is not None else "unknown")

    def _count(self, event_name: str, error_code: str) -> None:
        _, service, operation = event_name.split(".", 2)  # after-call.<service>.<Operation>
        with self._lock:
            self.requests[service, operation] += 1
            if error_code:
                self.errors[service, operation, error_code] += 1

    def snapshot(self) -> tuple[dict[ServiceOp, int], dict[tuple[str, str, str], int]]:
        with self._lock:
            return dict(self.requests), dict(self.errors)

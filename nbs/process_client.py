"""boto3 clients that a forked child never shares with its parent.

A boto3 client keeps a pool of open HTTP connections.  A child forked from
a process that used the client would send its requests over the parent's
sockets, interleaving bytes with the parent's requests.  ``ProcessClient``
stands in for a client: in the process that made it, attribute access goes
to that client; in a forked child the first use builds the child's own
client from the same recipe.  A client the caller handed over (Go's
``NewAWSStore`` takes clients) has no recipe: in a child its pooled
connections are dropped instead, so it opens new ones of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from nbs.forksafe import register


class ProcessClient:
    """Forwards to this process's client: ``make()``'s result, or the caller's client."""

    def __init__(self, make: Callable[[], Any] | None = None, client: Any = None) -> None:
        if make is None and client is None:
            raise ValueError("a ProcessClient needs a recipe or a client")
        self._make = make
        self._client = client if client is not None else make() if make is not None else None
        self._lock = threading.Lock()
        register(self)

    def __getattr__(self, name: str) -> Any:
        """Called only for names this object lacks: everything a boto3 client offers."""
        client = self._client
        if client is None:
            client = self._rebuild()
        return getattr(client, name)

    def _rebuild(self) -> Any:
        with self._lock:
            if self._client is None:
                assert self._make is not None
                self._client = self._make()
            return self._client

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        if self._make is not None:
            self._client = None  # its sockets close with it here; closing a copy leaves the parent's open
        else:
            _drop_connections(self._client)

    def __repr__(self) -> str:
        return f"ProcessClient({self._client!r})"


def _drop_connections(client: Any) -> None:
    """Close the connection pool of a botocore client (in a child: the inherited copies only)."""
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    close = getattr(session, "close", None)
    if close is not None:
        close()


def process_client(client: Any) -> Any:
    """``client`` made safe to use after fork (unchanged if it already is)."""
    return client if isinstance(client, ProcessClient) else ProcessClient(client=client)

"""nbsclient: the thin client of nbsd, with the same chunk-store API as ``nbs``.

    import nbsclient
    store = nbsclient.connect("/srv/noms/db")        # default endpoint, or endpoint="ipc://..."
    addr = store.put(b"bytes")
    store.commit(addr, store.root())
"""

from nbsclient.curve import AuthenticationError, ClientKeys, CurveKeyError
from nbsclient.protocol import (DaemonBusyError, DaemonError, DaemonUnavailableError, ForbiddenError,
                                UnknownSessionError, default_endpoint)
from nbsclient.store import DaemonStore


def connect(spec: str, endpoint: str | None = None, **options: object) -> DaemonStore:
    """Open ``spec`` through the daemon at ``endpoint`` (default: ``$NBSD_ENDPOINT`` or the ipc socket)."""
    return DaemonStore(spec, endpoint, **options)  # type: ignore[arg-type]


__all__ = ["AuthenticationError", "ClientKeys", "CurveKeyError", "DaemonBusyError", "DaemonError", "DaemonStore",
           "DaemonUnavailableError", "ForbiddenError", "UnknownSessionError", "connect", "default_endpoint"]

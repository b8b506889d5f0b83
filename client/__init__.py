"""nbsclient: the thin client of nbsd, with the same chunk-store API as ``nbs``.

    import nbsclient
    store = nbsclient.connect("/srv/noms/db")        # default endpoint, or endpoint="ipc://..."; relative paths
                                                     # are resolved against this process's working directory
    addr = store.put(b"bytes")
    store.commit(addr, store.root())
"""

from nbsclient.curve import AuthenticationError, ClientKeys, CurveKeyError
from nbsclient.protocol import (ClientConfigError, DaemonBusyError, DaemonError, DaemonNotAnsweringError,
                                DaemonNotRunningError, DaemonPermissionError, DaemonUnavailableError, ForbiddenError,
                                ProtocolError, UnknownSessionError, default_endpoint)
from nbsclient.store import DaemonStore


def connect(spec: str, endpoint: str | None = None, **options: object) -> DaemonStore:
    """Open ``spec`` through the daemon at ``endpoint`` (default: ``$NBSD_ENDPOINT``, else /run/nbsd/nbsd.sock).

    A daemon that cannot be reached raises at once, or within ``connect_timeout`` seconds, a subclass of
    ``DaemonUnavailableError`` that says why (not running, permission denied, not answering).
    """
    return DaemonStore(spec, endpoint, **options)  # type: ignore[arg-type]


__all__ = ["AuthenticationError", "ClientConfigError", "ClientKeys", "CurveKeyError", "DaemonBusyError", "DaemonError",
           "DaemonNotAnsweringError", "DaemonNotRunningError", "DaemonPermissionError", "DaemonStore",
           "DaemonUnavailableError", "ForbiddenError", "ProtocolError", "UnknownSessionError", "connect",
           "default_endpoint"]

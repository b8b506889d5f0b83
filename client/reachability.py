"""Why an ipc endpoint cannot be reached, found in microseconds instead of after a timeout.

ZeroMQ retries a connection to a missing or forbidden socket file silently
forever, so a client would only learn of it from a timeout, and then not why.
A plain ``connect(2)`` to the socket file tells at once: no file, a file no
one listens on (a daemon that died without removing it), or no permission.
The daemon's ZeroMQ socket sees the probe as a peer that left before its
greeting, and forgets it.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import socket

from nbsclient.protocol import DaemonNotRunningError, DaemonPermissionError, StaleSocketError

IPC = "ipc://"


def check_endpoint(endpoint: str) -> None:
    """Raise ``DaemonNotRunningError`` (``StaleSocketError``) or ``DaemonPermissionError`` if ``endpoint`` is an
    ipc socket that cannot be used.

    tcp endpoints pass: nothing short of a request tells about them.
    """
    if not endpoint.startswith(IPC):
        return
    path = endpoint[len(IPC):]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as probe:
        try:
            probe.connect(path)
        except FileNotFoundError:
            raise DaemonNotRunningError(f"no nbsd socket at {path}: the daemon is not running there "
                                        f"(start it, or set $NBSD_ENDPOINT to the daemon's endpoint)") from None
        except ConnectionRefusedError:
            raise StaleSocketError(f"no nbsd listens on {path}: the socket file is left from a daemon "
                                   "that is gone (start nbsd again)") from None
        except PermissionError:
            group = _group_of(path)
            user = pwd.getpwuid(os.geteuid()).pw_name
            raise DaemonPermissionError(f"permission denied on the nbsd socket {path}: user {user} may not connect; "
                                        f"add it to group {group} (usermod -aG {group} {user}) and log in again",
                                        group) from None
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.ECONNRESET):  # a busy listen queue still means a daemon
                raise DaemonNotRunningError(f"cannot connect to the nbsd socket {path}: {err.strerror}") from None


def _group_of(path: str) -> str:
    """The group of the socket, or of the nearest directory above it this user may look at (``/`` at worst)."""
    while True:
        try:
            gid = os.stat(path).st_gid
            break
        except OSError:
            path = os.path.dirname(path)
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)

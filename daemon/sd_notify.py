"""The systemd notification protocol (sd_notify), without libsystemd.

A service of ``Type=notify`` reports readiness, status and watchdog pings by
sending datagrams to the AF_UNIX socket named in ``$NOTIFY_SOCKET`` (a leading
``@`` means the abstract namespace).  Sending never stalls the daemon: a
manager that does not read its socket, or a socket that is gone, makes a
notification fail (``False``) after at most ``timeout`` seconds; periodic
ones are sent with no wait at all.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)

NOTIFY_TIMEOUT = 1.0


def notify(message: str, timeout: float = NOTIFY_TIMEOUT) -> bool:
    """Send ``message`` (e.g. ``"READY=1"``); False when not run by systemd or the send failed."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(timeout)
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as err:  # includes timeouts and a full queue (non-blocking send)
        log.warning("could not notify the service manager of %s: %s", message.split("=", 1)[0], err)
        return False
    return True


class Watchdog:
    """Pings ``WATCHDOG=1`` at half the interval systemd asked for, when it asked."""

    def __init__(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        wanted = bool(usec) and (not pid or pid == str(os.getpid()))
        self.interval = int(usec) / 2e6 if wanted and usec else None
        self._next = 0.0

    def tick(self) -> None:
        if self.interval is None:
            return
        now = time.monotonic()
        if now >= self._next:
            notify("WATCHDOG=1", timeout=0)
            self._next = now + self.interval

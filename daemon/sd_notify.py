"""The systemd notification protocol (sd_notify), without libsystemd.

A service of ``Type=notify`` reports readiness, status and watchdog pings by
sending datagrams to the AF_UNIX socket named in ``$NOTIFY_SOCKET`` (a leading
``@`` means the abstract namespace).
"""

from __future__ import annotations

import os
import socket
import time


def notify(message: str) -> bool:
    """Send ``message`` (e.g. ``"READY=1"``); False when not run by systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
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
            notify("WATCHDOG=1")
            self._next = now + self.interval

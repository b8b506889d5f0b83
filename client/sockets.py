"""Sending a ZeroMQ frame without pyzmq's Python-level wrapper.

``zmq.Socket.send`` is a Python method that handles DRAFT routing ids and
groups, then calls the compiled send.  On the hot path of a cached read that
wrapper costs as much as the rest of the send, and neither option is used
here, so the compiled method is called directly.  The benchmark's raw ZeroMQ
floor sends the same way.
"""

from __future__ import annotations

from typing import Protocol, cast

import zmq
from zmq.backend import Socket as _CompiledSocket


class _Send(Protocol):
    def __call__(self, socket: zmq.Socket[bytes], data: bytes, flags: int = 0, copy: bool = True) -> object: ...


send_frame = cast(_Send, _CompiledSocket.send)

"""The floor for a daemon round trip: a Python ROUTER that answers each request with N bytes.

It does the least a ROUTER server can: a blocking receive of the two frames
(peer identity, request) and two sends, with flags computed once and the
compiled send that nbsd and its clients use.
"""

from __future__ import annotations

import os
import sys

import zmq

from nbsclient.sockets import send_frame


def serve(endpoint: str, size: int) -> None:
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.bind(endpoint)
    payload = os.urandom(size)
    more = int(zmq.SNDMORE)
    recv = router.recv
    while True:
        identity = recv()
        recv()
        send_frame(router, identity, more)
        send_frame(router, payload)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))

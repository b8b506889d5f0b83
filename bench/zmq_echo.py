"""The floor for a daemon round trip: a Python ROUTER that answers each request with N bytes."""

from __future__ import annotations

import os
import sys

import zmq


def serve(endpoint: str, size: int) -> None:
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.bind(endpoint)
    payload = os.urandom(size)
    poller = zmq.Poller()
    poller.register(router, zmq.POLLIN)
    while True:
        if poller.poll(200):
            while True:
                try:
                    identity, _ = router.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                router.send_multipart([identity, payload])


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))

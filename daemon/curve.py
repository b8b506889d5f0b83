"""CURVE authentication of the daemon's socket: ZeroMQ's own mechanism, through pyzmq's ``zmq.auth``.

The ROUTER becomes a CURVE server with the daemon's key pair, and a ZAP
handler thread admits a client only if its public key is one of the
certificates (``*.key``) in the allowed-clients directory.  The handler runs
before the socket binds: without one, libzmq would let every CURVE client in.
The directory is read again at each maintenance pass, so adding or removing a
key file takes effect for new connections within seconds.
"""

from __future__ import annotations

import logging

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from nbsclient.curve import load_key_pair

log = logging.getLogger(__name__)

MAX_REPORTED_KEYS = 256  # refused keys logged by name; past that they are only counted


class AllowedKeys:
    """The allowed-clients directory as the ZAP handler asks it: is this public key listed?"""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.keys: frozenset[bytes] = frozenset()
        self.refused = 0
        self._reported: set[bytes] = set()
        self.reload()

    def reload(self) -> None:
        """Read the directory again; a directory that cannot be read keeps the keys it gave last."""
        try:
            self.keys = frozenset(zmq.auth.load_certificates(self.directory))
        except (OSError, ValueError) as err:
            log.error("cannot read the allowed CURVE keys in %s (%s); keeping the %d known", self.directory, err,
                      len(self.keys))

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keys:
            return True
        self.refused += 1
        if key not in self._reported and len(self._reported) < MAX_REPORTED_KEYS:
            self._reported.add(key)
            log.warning("refused a client with CURVE key %s: not in %s", key.decode(), self.directory)
        return False


class CurveServer:
    """The daemon's key pair and its ZAP handler on ``context``; ``secure`` a socket before binding it."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], secret_key_file: str, clients_dir: str) -> None:
        self.public, self.secret = load_key_pair(secret_key_file)
        self.allowed = AllowedKeys(clients_dir)
        self._auth = ThreadAuthenticator(context, log=logging.getLogger("nbsd.zap"))
        self._auth.start()
        self._auth.configure_curve_callback("*", self.allowed)

    def secure(self, sock: zmq.Socket[bytes]) -> None:
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True

    def stop(self) -> None:
        self._auth.stop()

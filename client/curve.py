"""CURVE keys of a client, and what a refused handshake means.

A daemon on ``tcp://`` (or any daemon given keys) admits only clients whose
public key it lists, through ZeroMQ's own CURVE mechanism.  A client's keys
are pyzmq ``zmq.auth`` certificate files: its own secret-key file (which also
holds its public key) and the daemon's public-key file, named by
``NBSD_CURVE_SECRET_KEY`` and ``NBSD_CURVE_SERVER_KEY`` unless passed
explicitly.  A refused handshake is raised as ``AuthenticationError`` at once:
retrying cannot help, and waiting for a timeout would hide why.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

import zmq
import zmq.auth

from nbs.errors import NBSError

SECRET_KEY_ENV = "NBSD_CURVE_SECRET_KEY"
SERVER_KEY_ENV = "NBSD_CURVE_SERVER_KEY"

# Handshake failures the client's socket monitor reports.
REFUSALS = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
# A failure without detail is also what a daemon restarting mid-handshake causes; only repeats mean refusal.
NO_DETAIL_REPEATS = 3


class CurveKeyError(NBSError, ValueError):
    """A CURVE key file that is missing, malformed or readable by every user."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"CURVE key file {path}: {reason}")
        self.reason = reason


class AuthenticationError(NBSError):
    """The daemon refused this client's handshake (unknown key, or no key where one is required)."""


def load_key_pair(path: str) -> tuple[bytes, bytes]:
    """``(public, secret)`` from a zmq.auth secret-key file, which must not be world-readable."""
    try:
        mode = os.stat(path).st_mode
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as err:
        raise CurveKeyError(path, f"cannot be read ({err})") from err
    if secret is None:
        raise CurveKeyError(path, "holds no secret key (use the .key_secret file of the pair)")
    if mode & stat.S_IROTH:
        raise CurveKeyError(path, "is readable by every user (chmod o-r it)")
    return public, secret


def load_public_key(path: str) -> bytes:
    try:
        return zmq.auth.load_certificate(path)[0]
    except (OSError, ValueError) as err:
        raise CurveKeyError(path, f"cannot be read ({err})") from err


@dataclass(frozen=True)
class ClientKeys:
    """This client's key pair and the daemon's public key (Z85 text, as ZeroMQ takes them)."""

    public: bytes
    secret: bytes
    server: bytes

    @classmethod
    def from_files(cls, secret_key_file: str, server_key_file: str) -> ClientKeys:
        public, secret = load_key_pair(secret_key_file)
        return cls(public, secret, load_public_key(server_key_file))

    @classmethod
    def from_env(cls) -> ClientKeys | None:
        """The keys ``$NBSD_CURVE_SECRET_KEY`` and ``$NBSD_CURVE_SERVER_KEY`` name; None when neither is set."""
        secret_file, server_file = os.environ.get(SECRET_KEY_ENV), os.environ.get(SERVER_KEY_ENV)
        if not secret_file and not server_file:
            return None
        if not (secret_file and server_file):
            raise CurveKeyError(secret_file or server_file or "",
                                f"set both {SECRET_KEY_ENV} and {SERVER_KEY_ENV}, or neither")
        return cls.from_files(secret_file, server_file)


def secure(sock: zmq.Socket[bytes], keys: ClientKeys | None) -> None:
    """Make ``sock`` a CURVE client with ``keys`` (before it connects); None leaves it plaintext."""
    if keys is not None:
        sock.curve_serverkey = keys.server
        sock.curve_publickey = keys.public
        sock.curve_secretkey = keys.secret


def refusal(event: int, endpoint: str, keys: ClientKeys | None) -> AuthenticationError:
    """The error for a handshake the daemon at ``endpoint`` refused with monitor ``event``."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        reason = "it does not know this client's public key (add it to the daemon's curve_client_keys)"
    elif keys is None:
        reason = f"it requires CURVE keys and this client has none (set {SECRET_KEY_ENV} and {SERVER_KEY_ENV})"
    elif event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        reason = "this client uses CURVE keys and the daemon does not"
    else:
        reason = f"the handshake broke off: is {SERVER_KEY_ENV} the daemon's public key?"
    return AuthenticationError(f"the daemon at {endpoint} refused the connection: {reason}")

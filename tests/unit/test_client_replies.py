"""The client checks every field of the daemon's replies it uses.

A scripted daemon (a real ZeroMQ ROUTER socket on a thread) answers each
operation as told; a reply lacking a field, or holding the wrong type, must
be a ``ProtocolError`` naming the field, never a ``KeyError``/``TypeError``
from deep in the client or a wrong value handed to the caller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

import nbsclient
from nbs.addr import compute_addr
from nbs.manifest import ManifestContents
from nbsclient import protocol as p

pytestmark = pytest.mark.timeout(60)

CONTENTS = p.encode_contents(ManifestContents())
GOOD: dict[str, Any] = {
    p.HELLO: {"protocol": p.PROTOCOL_VERSION, "max_message": p.DEFAULT_MAX_MESSAGE, "attachments": False,
              "cache": None},
    p.OPEN: {"handle": 7, "contents": CONTENTS},
    p.CLOSE: {"closed": True},
    p.GET: {"found": {}},
    p.HAS: {"absent": []},
    p.COUNT: {"count": 0},
    p.TABLE_BEGIN: {"upload": 1},
    p.TABLE_END: {"name": b"\x01" * 20, "count": 1},
    p.COMMIT: {"ok": True, "contents": CONTENTS},
    p.REBASE: {"contents": CONTENTS},
}


class ScriptedDaemon:
    """Answers requests with ``GOOD`` replies, except the operations given other replies."""

    def __init__(self, endpoint: str, replies: dict[str, Any]) -> None:
        self.replies = {**GOOD, **replies}
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.linger = 0
        self._socket.bind(endpoint)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self._socket.poll(50):
                continue
            identity, frame, *attachment = self._socket.recv_multipart()
            request = p.decode_request(frame, attachment=memoryview(attachment[0]) if attachment else None)
            body = self.replies[request.op]
            if request.op == p.TABLE_CHUNKS and body is None:  # the addresses of the chunks sent, as a daemon's
                body = {"addrs": b"".join(_addresses(bytes(request.body["data"]),
                                                     p.decode_lengths(request.body["lengths"])))}
            self._socket.send_multipart([identity, p.encode_reply(request.request_id, body)])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._socket.close()
        self._context.term()


def _addresses(data: bytes, lengths: list[int]) -> list[bytes]:
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    return [compute_addr(data[start:start + length]) for start, length in zip(starts, lengths)]


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], nbsclient.DaemonStore]]:
    daemons: list[ScriptedDaemon] = []
    stores: list[nbsclient.DaemonStore] = []

    def start(replies: dict[str, Any]) -> nbsclient.DaemonStore:
        endpoint = f"ipc://{tmp_path / f'nbsd-{len(daemons)}.sock'}"
        daemons.append(ScriptedDaemon(endpoint, {p.TABLE_CHUNKS: None, **replies}))
        store = nbsclient.connect(str(tmp_path / "db"), endpoint, fast_path=False, timeout=5.0, retries=0)
        stores.append(store)
        return store

    yield start
    for store in stores:
        store.close()
    for daemon in daemons:
        daemon.close()


def _connect_fails(tmp_path: Path, replies: dict[str, Any], field: str) -> None:
    endpoint = f"ipc://{tmp_path / 'bad.sock'}"
    daemon = ScriptedDaemon(endpoint, replies)
    try:
        with pytest.raises(p.ProtocolError, match=field):
            nbsclient.connect(str(tmp_path / "db"), endpoint, fast_path=False, timeout=5.0, retries=0)
    finally:
        daemon.close()


@pytest.mark.parametrize(("op", "reply", "field"), [
    (p.HELLO, {**GOOD[p.HELLO], "max_message": "large"}, "max_message"),
    (p.HELLO, ["not", "a", "map"], "not a map"),
    (p.OPEN, {"contents": CONTENTS}, "handle"),
    (p.OPEN, {"handle": True, "contents": CONTENTS}, "handle"),
    (p.OPEN, {"handle": 7}, "contents"),
    (p.OPEN, {"handle": 7, "contents": {**CONTENTS, "root": b"short"}}, "manifest contents"),
])
def test_a_bad_greeting_or_open_reply_is_a_protocol_error(tmp_path: Path, op: str, reply: Any, field: str) -> None:
    _connect_fails(tmp_path, {op: reply}, field)


ADDR = b"\x03" * 20


@pytest.mark.parametrize(("op", "reply", "call", "field"), [
    (p.GET, {"found": {ADDR: 5}}, lambda s: s.get_many([ADDR]), "not bytes"),
    (p.GET, {"found": [ADDR]}, lambda s: s.get_many([ADDR]), "found"),
    (p.GET, {}, lambda s: s.get_many([ADDR]), "found"),
    (p.HAS, {"absent": [b"short"]}, lambda s: s.has_many([ADDR]), "20 bytes"),
    (p.HAS, {"absent": b"x" * 20}, lambda s: s.has_many([ADDR]), "absent"),
    (p.COUNT, {"count": "3"}, lambda s: s.count(), "count"),
    (p.COUNT, {"count": False}, lambda s: s.count(), "count"),
    (p.TABLE_BEGIN, {}, lambda s: s.put_many([b"chunk"]), "upload"),
    (p.TABLE_CHUNKS, {"addrs": None}, lambda s: s.put_many([b"chunk"]), "addrs"),
    (p.TABLE_END, {"name": b"\x01" * 19, "count": 1}, lambda s: (s.put(b"chunk"), s.commit(ADDR, s.root())),
     "bad table spec"),
    (p.TABLE_END, {"name": b"\x01" * 20}, lambda s: (s.put(b"chunk"), s.commit(ADDR, s.root())), "count"),
    (p.COMMIT, {"ok": 1, "contents": CONTENTS}, lambda s: s.commit(ADDR, s.root()), "ok"),
    (p.COMMIT, {"ok": True}, lambda s: s.commit(ADDR, s.root()), "contents"),
    (p.REBASE, {"contents": None}, lambda s: s.rebase(), "contents"),
])
def test_a_bad_reply_field_is_a_protocol_error_naming_it(
        scripted: Callable[[dict[str, Any]], nbsclient.DaemonStore], op: str, reply: Any,
        call: Callable[[nbsclient.DaemonStore], object], field: str) -> None:
    store = scripted({op: reply})
    with pytest.raises(p.ProtocolError, match=field):
        call(store)


def test_good_replies_pass_the_checks(scripted: Callable[[dict[str, Any]], nbsclient.DaemonStore]) -> None:
    """The scripted daemon's good replies go through: the failures above come from the bad fields alone."""
    store = scripted({p.GET: {"found": {ADDR: b"chunk"}}, p.HAS: {"absent": [ADDR]}, p.COUNT: {"count": 3}})
    assert store.get_many([ADDR]) == {ADDR: b"chunk"}
    assert store.has_many([ADDR]) == {ADDR}
    assert store.count() == 3
    assert store.put_many([b"chunk"]) == [compute_addr(b"chunk")]
    assert store.commit(ADDR, store.root())
    store.rebase()


def test_a_hello_whose_cache_is_not_a_map_means_no_fast_path(tmp_path: Path) -> None:
    """The fast path is an optimisation: a cache description the client cannot use leaves it to requests."""
    endpoint = f"ipc://{tmp_path / 'odd.sock'}"
    daemon = ScriptedDaemon(endpoint, {p.HELLO: {**GOOD[p.HELLO], "cache": ["not", "a", "map"]},
                                       p.GET: {"found": {ADDR: b"chunk"}}})
    try:
        with nbsclient.connect(str(tmp_path / "db"), endpoint, fast_path=True, timeout=5.0, retries=0) as store:
            assert store.get_many([ADDR]) == {ADDR: b"chunk"}
    finally:
        daemon.close()

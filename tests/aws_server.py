"""A moto server for the test suites: S3 and DynamoDB over real HTTP on 127.0.0.1.

``start_moto_server`` runs ``python -m moto.server`` as a subprocess on a free
loopback port and waits until it answers.  The ``moto_server`` fixture (see
tests/conftest.py) starts one per test session, i.e. one per pytest-xdist
worker.  ``isolate_aws_environment`` points every AWS setting of the test
process at dummy values, so nothing can reach a real AWS endpoint: clients
built without an explicit endpoint go to a dead loopback port.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from nbs.aws_factory import aws_clients

REGION = "us-east-1"
DEAD_ENDPOINT = "http://127.0.0.1:9"
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ENDPOINT_URL": DEAD_ENDPOINT,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
UNSET_ENV = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION",
             "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
             "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN")


def isolate_aws_environment() -> None:
    """Dummy credentials and region, and no way to a real AWS endpoint (inherited by subprocesses)."""
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    os.environ.update(DUMMY_ENV)


def unique_name(prefix: str) -> str:
    """A fresh bucket, table or store name (lower case, valid for S3)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MotoServer:
    endpoint: str
    process: subprocess.Popen[bytes]
    _clients: tuple[Any, Any] | None = None

    def session(self) -> boto3.Session:
        return boto3.Session(region_name=REGION)

    def clients(self) -> tuple[Any, Any]:
        """``(s3, dynamodb)`` clients configured as the library configures them (shared: they are thread-safe)."""
        if self._clients is None:
            self._clients = aws_clients(self.session(), self.endpoint)
        return self._clients

    def create_bucket(self, name: str | None = None) -> str:
        name = name or unique_name("nbs-bucket")
        self.clients()[0].create_bucket(Bucket=name)
        return name

    def create_table(self, name: str | None = None, region: str = REGION) -> str:
        """A DynamoDB table shaped as NBS needs it: string partition key ``db``, nothing else (moto keeps
        tables per region, like AWS)."""
        name = name or unique_name("nbs-table")
        ddb = self.clients()[1] if region == REGION else aws_clients(boto3.Session(region_name=region),
                                                                         self.endpoint)[1]
        ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "db", "KeyType": "HASH"}],
                                       AttributeDefinitions=[{"AttributeName": "db", "AttributeType": "S"}],
                                       BillingMode="PAY_PER_REQUEST")
        return name

    def enforce_auth(self, free_requests: int = 0) -> None:
        """Check credentials and IAM policies from now on (after ``free_requests`` more requests)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset-auth",
                                         data=str(free_requests).encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request) as reply:
            json.load(reply)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


# Runs ``python -m moto.server`` so that, on Linux, it is terminated when the test process dies,
# even by SIGKILL (prctl PR_SET_PDEATHSIG), instead of lingering as an orphan.
# DynamoDB applies a conditional write atomically; moto's threaded server checks the condition and
# then writes without a lock, so two racing writers can both pass the check (seen: two commits of
# eight racing writers landing on the same manifest lock).  Item operations are serialised here,
# as DynamoDB serialises them per item.
_LAUNCH = """
import ctypes, functools, runpy, signal, sys, threading
try:
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)
except (AttributeError, OSError):
    pass
from moto.dynamodb.models import DynamoDBBackend
_items = threading.Lock()
def _serialised(operation):
    @functools.wraps(operation)
    def run(*args, **kwargs):
        with _items:
            return operation(*args, **kwargs)
    return run
for _name in ("get_item", "put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"):
    setattr(DynamoDBBackend, _name, _serialised(getattr(DynamoDBBackend, _name)))
sys.argv[0] = "moto.server"
runpy.run_module("moto.server", run_name="__main__", alter_sys=True)
"""


def start_moto_server(log_dir: Path, attempts: int = 3) -> MotoServer:
    """Start moto on a free loopback port; retried if another process grabs the port first."""
    env = dict(os.environ)
    env.update(DUMMY_ENV)
    for _ in range(attempts):
        port = _free_port()
        log = open(log_dir / f"moto-{port}.log", "wb")
        process = subprocess.Popen([sys.executable, "-c", _LAUNCH, "-H", "127.0.0.1", "-p", str(port)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    return MotoServer(endpoint, process)
            except OSError:
                time.sleep(0.05)
        process.kill()
        process.wait()
    raise RuntimeError(f"moto server did not start after {attempts} attempts; see {log_dir}")


@contextmanager
def moto_server_running(log_dir: Path) -> Iterator[MotoServer]:
    server = start_moto_server(log_dir)
    try:
        yield server
    finally:
        server.stop()


class RequestCounter:
    """Counts the HTTP requests boto3 clients send (retries included), by operation name."""

    def __init__(self, *clients: Any) -> None:
        self.counts: Counter[str] = Counter()
        for client in clients:
            client.meta.events.register("before-send", self._count)

    def _count(self, event_name: str, **kwargs: Any) -> None:
        self.counts[event_name.rsplit(".", 1)[-1]] += 1

    def __getitem__(self, operation: str) -> int:
        return self.counts[operation]

    def reset(self) -> None:
        self.counts.clear()


# --- the aws-small fixture: a dump of a Go-written AWS store -----------------------------------------

AWS_SMALL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "aws-small"
AWS_SMALL_DUMP: dict[str, Any] = json.loads((AWS_SMALL / "dynamodb.json").read_text())
AWS_SMALL_OBJECTS: dict[str, Any] = json.loads((AWS_SMALL / "s3_objects.json").read_text())
AWS_SMALL_STORE = "small"


def _typed(value: dict[str, str]) -> dict[str, Any]:
    """A DynamoDB JSON attribute of the dump as boto3 takes it (B values are base64 in the dump)."""
    [(kind, raw)] = value.items()
    return {kind: base64.b64decode(raw) if kind == "B" else raw}


def load_dump(server: MotoServer, table: str) -> None:
    """Create DynamoDB table ``table`` and put every item of the aws-small dump in it."""
    _, ddb = server.clients()
    server.create_table(table)
    for item in AWS_SMALL_DUMP["items"]:
        ddb.put_item(TableName=table, Item={k: _typed(v) for k, v in item.items()})


def load_aws_small(server: MotoServer) -> tuple[str, str]:
    """The dump under its own names (table ``nbs-manifests``, bucket ``nbs-fixtures``)."""
    assert AWS_SMALL_OBJECTS["objects"] == []  # every table of this fixture is a DynamoDB item
    table, bucket = AWS_SMALL_DUMP["table"], AWS_SMALL_OBJECTS["bucket"]
    load_dump(server, table)
    server.create_bucket(bucket)
    return table, bucket

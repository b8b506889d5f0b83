"""``noms sync`` of a large dataset: local -> local and local -> AWS (moto), in MB/s of store data.

The dataset is one blob (100 MiB; 10 MiB with --quick) committed to a local
store.  Each sync runs the real command (``nbs.noms.cli.main``) into an empty
destination.  Baselines, measured in the same run on the same bytes: copying
the source store's files (``shutil.copytree``) for local -> local, and
uploading those files to the same moto bucket with plain boto3 ``put_object``
calls for local -> AWS.  moto runs on the same two cores and keeps objects in
memory, so the AWS figures compare shapes of work, not real S3 throughput.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import nbs.noms as noms
from bench.common import Figure, Report, progress
from nbs.noms.cli import main as noms_main
from tests.aws_server import isolate_aws_environment, start_moto_server

MIB = 1 << 20


def _make_source(path: str, size: int) -> None:
    with noms.open_database(path + "?sync=false") as db:
        data = os.urandom(size)
        blob = noms.new_blob(db.store, (data[i:i + MIB] for i in range(0, size, MIB)))
        db.commit("big", blob, noms.new_meta(date="2024-01-01T00:00:00Z", message="100 MiB"))


def _store_bytes(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).iterdir() if f.is_file())


def _timed_sync(source: str, dest: str) -> float:
    out, err = io.BytesIO(), io.StringIO()
    started = time.perf_counter()
    code = noms_main(["sync", f"{source}::big", f"{dest}::big"], out, err)
    elapsed = time.perf_counter() - started
    if code != 0 or b"Done - Synced" not in out.getvalue():
        raise RuntimeError(f"sync failed: {err.getvalue()}")
    return elapsed


def run(report: Report, quick: bool) -> None:
    size = (10 if quick else 100) * MIB
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as work:
        source = os.path.join(work, "source")
        progress(f"  building a {size // MIB} MiB blob dataset")
        _make_source(source, size)
        stored = _store_bytes(source)
        mb = stored / 1e6

        started = time.perf_counter()
        shutil.copytree(source, os.path.join(work, "copy"))
        copy_time = time.perf_counter() - started
        sync_time = _timed_sync(source, os.path.join(work, "dest"))
        report.add(Figure("sync", "local -> local", mb / sync_time, "MB/s", "copying the store's files",
                          mb / copy_time))

        isolate_aws_environment()
        server = start_moto_server(Path(work))
        try:
            table, bucket = server.create_table(), server.create_bucket()
            s3, _ = server.clients()
            started = time.perf_counter()
            for f in Path(source).iterdir():
                if f.is_file():
                    s3.put_object(Bucket=bucket, Key=f"plain/{f.name}", Body=f.read_bytes())
            upload_time = time.perf_counter() - started
            dest = f"aws://{table}:{bucket}/bench?endpoint={server.endpoint}"
            sync_time = _timed_sync(source, dest)
            report.add(Figure("sync", "local -> AWS (moto)", mb / sync_time, "MB/s",
                              "plain boto3 put_object of the store's files", mb / upload_time))
        finally:
            server.stop()

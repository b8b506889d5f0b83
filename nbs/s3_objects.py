"""Table objects in one S3 bucket: multipart uploads and ranged reads (NBS-FORMAT.md 6.4.2-6.4.5).

A table that fits in one part is stored with one PutObject.  Go uses a
one-part multipart upload there, which stores the same bytes under the same
key with three requests instead of one; readers cannot tell the difference.
Larger uploads are multipart: parts are sent concurrently, each holding a
slot of the shared rate limiter, either as bytes or as a server-side copy of
a range of another object (UploadPartCopy).  On any failure the upload is
aborted once no part is in flight any more, so no half-finished upload
lingers in the bucket.  A caller still encoding a table may ``begin`` its
upload ahead, and ``drop`` it (an abort) if the table needs none after all.

A table's index is read with one suffix-range GET (``bytes=-<index+footer>``)
and its chunks with ranged GETs, which the chunk source has already
coalesced into reads of nearby records.  Each GET holds a slot of the shared
rate limiter.  botocore retries throttling, 5xx answers and failed
connections; a response body that breaks off (connection reset, truncated
body) is retried here by repeating the GET with jittered exponential
backoff, a bounded number of times.  Objects also in the on-disk table
cache are read from there.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import HTTPClientError, IncompleteReadError

from nbs.addr import Addr
from nbs.aws_errors import aws_call
from nbs.chunk_source import ReaderAt
from nbs.errors import (AccessDeniedError, AWSError, AWSUnavailableError, CorruptTableError, TableAccessDeniedError,
                        TableNotFoundError)
from nbs.forksafe import Semaphore
from nbs.fs_table_cache import FSTableCache
from nbs.io_pool import IOPool, finish_all, limited
from nbs.stats import Stats

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

_BROKEN_BODY = (HTTPClientError, IncompleteReadError, ConnectionError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a GET whose body broke off is repeated (Go: 128 µs to 1.024 s, factor 2)."""

    attempts: int = 8
    min_delay: float = 128e-6
    max_delay: float = 1.024

    def delay(self, attempt: int) -> float:
        """Jittered sleep before retry ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.min_delay * 2 ** attempt)
        return random.uniform(self.min_delay, ceiling)


@dataclass(frozen=True)
class CopyPart:
    """A byte range of an existing table object, copied server-side into a new one."""

    name: Addr
    start: int
    length: int

    @property
    def copy_range(self) -> str:
        return f"bytes={self.start}-{self.start + self.length - 1}"


UploadPart = Callable[[str, str, int], str]  # (key, upload id, part number) -> ETag


class S3Objects:
    """Table objects in one bucket, read through the table cache when it holds them."""

    def __init__(self, s3: S3Client, bucket: str, pool: IOPool, rate_limit: Semaphore | None = None,
                 table_cache: FSTableCache | None = None, retry: RetryPolicy = RetryPolicy()) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.pool = pool
        self.rate_limit = rate_limit
        self.table_cache = table_cache
        self.retry = retry

    def read_at(self, name: Addr, offset: int, length: int, stats: Stats) -> bytes:
        if length == 0:
            return b""
        return self._read(name, length, stats, lambda cache: cache.read_at(str(name), offset, length),
                          f"bytes={offset}-{offset + length - 1}")

    def read_tail(self, name: Addr, length: int, stats: Stats) -> bytes:
        """The last ``length`` bytes (a table's index and footer), exactly."""
        data = self._read(name, length, stats, lambda cache: cache.read_tail(str(name), length), f"bytes=-{length}")
        if len(data) != length:
            raise CorruptTableError(str(name), f"object has {len(data)} bytes, its index needs {length}")
        return data

    def _read(self, name: Addr, length: int, stats: Stats, from_cache: Callable[[FSTableCache], bytes | None],
              byte_range: str) -> bytes:
        """``length`` bytes from the table cache if it holds them whole, else from S3."""
        started = time.perf_counter_ns()
        if self.table_cache is not None:
            data = from_cache(self.table_cache)
            if data is not None and len(data) == length:
                stats.file_bytes_per_read.sample(length)
                stats.file_read_latency.sample_time(started)
                return data
        data = self._get(name, byte_range)
        stats.s3_bytes_per_read.sample(length)
        stats.s3_read_latency.sample_time(started)
        return data

    def _get(self, name: Addr, byte_range: str) -> bytes:
        key = str(name)
        action = f"GetObject s3://{self.bucket}/{key} {byte_range}"
        attempt = 1
        while True:
            try:
                return self._get_once(key, byte_range, action)
            except _BROKEN_BODY as err:
                if attempt >= self.retry.attempts:
                    raise AWSUnavailableError(action, type(err).__name__,
                                              f"body still broken after {attempt} attempts: {err}") from err
                log.info("retrying %s after its body broke off (attempt %d): %s", action, attempt, err)
                time.sleep(self.retry.delay(attempt))
                attempt += 1

    def _get_once(self, key: str, byte_range: str, action: str) -> bytes:
        with limited(self.rate_limit):
            try:
                with aws_call(action):
                    reply = self.s3.get_object(Bucket=self.bucket, Key=key, Range=byte_range)
            except AWSError as err:
                if err.code == "NoSuchKey":
                    raise TableNotFoundError(key, f"s3://{self.bucket}") from err
                if type(err) is AccessDeniedError:
                    raise TableAccessDeniedError(
                        err.action, err.code, f"{err.message} (the table may be missing: without s3:ListBucket "
                        f"on arn:aws:s3:::{self.bucket}, S3 answers a missing object with 403, not 404)",
                        err.request_id, err.status) from err
                raise
            body = reply["Body"]
            try:
                data = body.read()
            finally:
                body.close()
        expected = reply.get("ContentLength", len(data))
        if len(data) != expected:
            raise IncompleteReadError(actual_bytes=len(data), expected_bytes=expected)
        return data

    def put(self, name: Addr, data: bytes) -> None:
        """Store ``data`` as object ``name`` in one request."""
        key = str(name)
        with limited(self.rate_limit), aws_call(f"PutObject s3://{self.bucket}/{key}"):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def bytes_part(self, data: bytes) -> UploadPart:
        """A part uploading ``data``."""
        def send(key: str, upload_id: str, number: int) -> str:
            with limited(self.rate_limit), aws_call(f"UploadPart s3://{self.bucket}/{key} part {number}"):
                return self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                           Body=data)["ETag"]
        return send

    def copy_part(self, part: CopyPart) -> UploadPart:
        """A part copying a range of another object of this bucket."""
        def send(key: str, upload_id: str, number: int) -> str:
            try:
                with limited(self.rate_limit), aws_call(f"UploadPartCopy s3://{self.bucket}/{key} part {number}"):
                    reply = self.s3.upload_part_copy(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                     PartNumber=number,
                                                     CopySource={"Bucket": self.bucket, "Key": str(part.name)},
                                                     CopySourceRange=part.copy_range)
            except AWSError as err:
                if err.code == "NoSuchKey":  # the source table is gone (collected)
                    raise TableNotFoundError(str(part.name), f"s3://{self.bucket}") from err
                raise
            return reply["CopyPartResult"]["ETag"]
        return send

    def begin(self, name: Addr) -> Future[str]:
        """Start a multipart upload of object ``name`` in the background; its id, for ``upload`` (or ``drop``).

        A caller that will probably need one starts it while it still encodes
        the first part, so the request's round trip overlaps that work.
        """
        return self.pool.submit(functools.partial(self._create, str(name)))

    def _create(self, key: str) -> str:
        with aws_call(f"CreateMultipartUpload s3://{self.bucket}/{key}"):
            return str(self.s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"])

    def drop(self, name: Addr, begun: Future[str]) -> None:
        """Abort the upload ``begin`` started, once it has (one that failed to start left nothing behind)."""
        try:
            upload_id = begun.result()
        except Exception:  # noqa: BLE001 - it never started, and the caller does not need it: nothing to undo
            return
        key = str(name)
        self._abort(f"s3://{self.bucket}/{key}", key, upload_id)

    def upload(self, name: Addr, parts: Iterable[UploadPart], begun: Future[str] | None = None) -> None:
        """Multipart-upload ``parts`` (numbered from 1) as object ``name``, in the upload ``begun`` if given;
        abort on any failure.

        Each part is sent as soon as ``parts`` yields it, so a caller still
        producing the later parts overlaps with the upload of the earlier ones.
        """
        key = str(name)
        where = f"s3://{self.bucket}/{key}"
        upload_id = self._create(key) if begun is None else begun.result()
        sent: list[Future[str]] = []
        try:
            for number, send in enumerate(parts, 1):
                sent.append(self.pool.submit(functools.partial(send, key, upload_id, number)))
            finish_all(sent)
            with aws_call(f"CompleteMultipartUpload {where}"):
                self.s3.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id,
                    MultipartUpload={"Parts": [{"ETag": f.result(), "PartNumber": number}
                                               for number, f in enumerate(sent, 1)]})
        except BaseException:
            for f in sent:
                f.cancel()
            wait(sent)  # no part still running when the upload is aborted
            self._abort(where, key, upload_id)
            raise

    def _abort(self, where: str, key: str, upload_id: str) -> None:
        try:
            with aws_call(f"AbortMultipartUpload {where}"):
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except AWSError:
            log.exception("could not abort the failed upload %s of %s", upload_id, where)


class S3ReaderAt(ReaderAt):
    """Positioned reads of one table object; batched reads run concurrently on the pool."""

    def __init__(self, objects: S3Objects, name: Addr, stats: Stats) -> None:
        self._objects = objects
        self._name = name
        self._stats = stats

    def read_at(self, offset: int, length: int) -> bytes:
        return self._objects.read_at(self._name, offset, length, self._stats)

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        return self._objects.pool.map(lambda r: self.read_at(*r), ranges)

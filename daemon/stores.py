"""Opening stores for sessions, under the daemon's policy and shared caches.

Every client of the daemon acts with the daemon's rights, so each kind of
store is opened only as far as the configuration allows, before anything is
read.  Local stores must live under one of the configured roots (symlinks are
resolved first, so ``..`` or a link cannot escape).  ``mem`` (see
``nbsd.mem_store``) is off unless allowed.  AWS stores must match one of the
``aws_stores`` patterns over ``table:bucket/store`` (none by default), and go
through one ``AWSStoreFactory`` per (DynamoDB table, bucket); the daemon's AWS
settings (region, profile, endpoint) apply, and a client may not point the
daemon's credentials at another profile or endpoint.  All stores share one
index cache, one descriptor cache (the open-files budget) and one set of
manifest locks, so commits to a store serialise inside the daemon.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import threading
from typing import TYPE_CHECKING

from nbs.errors import SpecError
from nbs.factory import SharedCaches, local_store_with, make_store_directory
from nbs.manifest import ManifestContents
from nbs.size_cache import SizeCache
from nbs.spec import StoreSpec, parse_store_spec
from nbs.store import NomsBlockStore
from nbsclient.protocol import FORBIDDEN, ForbiddenError
from nbsd.backend_calls import BackendCalls
from nbsd.config import Config
from nbsd.mem_store import MemStore

if TYPE_CHECKING:  # boto3 loads only when an AWS store is opened: daemon start-up stays fast
    from nbs.aws_factory import AWSSettings, AWSStoreFactory

# Files the daemon holds open besides table files: LMDB data and lock, the instance lock, logs.
RESERVED_FILES = 8


class StoreOpener:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.fd_budget = max(4, config.max_open_files - RESERVED_FILES - config.threads)
        self.caches = SharedCaches.create(config.index_cache_size, self.fd_budget)
        self.backend = BackendCalls()
        self.mem = MemStore(config.mem_store_size, self.caches)
        # One budget for the bytes of small tables (DynamoDB items) of every AWS store: per factory it would
        # be 256 MiB for each table and bucket, outside every configured bound.
        self.small_tables = (SizeCache[bytes, bytes](config.small_table_cache_size)
                             if config.small_table_cache_size > 0 else None)
        self._factories: dict[tuple[str, str, AWSSettings], AWSStoreFactory] = {}
        self._lock = threading.Lock()

    def canonical(self, spec_text: str) -> tuple[str, StoreSpec]:
        """A stable key for the store a spec names, and the parsed spec; enforces the configured policy."""
        spec = parse_store_spec(spec_text)
        if spec.protocol == "nbs":
            path = os.path.realpath(os.path.expanduser(spec.path))
            if not any(os.path.commonpath([root, path]) == root for root in self.config.local_roots):
                raise ForbiddenError(FORBIDDEN, f"local store {path!r} is outside the daemon's local roots "
                                                f"({', '.join(self.config.local_roots) or 'none configured'})")
            return f"nbs:{path}", StoreSpec("nbs", path=path, options=spec.options)
        if spec.protocol == "mem" and not self.config.allow_mem:
            raise ForbiddenError(FORBIDDEN, "this daemon does not serve the mem store (allow_mem is false)")
        if spec.protocol == "aws":
            target = f"{spec.table}:{spec.bucket}/{spec.name}"
            patterns = self.config.aws_stores
            if not any(fnmatch.fnmatchcase(target, pattern) for pattern in patterns):
                raise ForbiddenError(FORBIDDEN, f"AWS store {target} matches none of the daemon's aws_stores "
                                                f"({', '.join(patterns) or 'none allowed'})")
        return str(spec), spec

    def _aws_settings(self, spec: StoreSpec) -> AWSSettings:
        from nbs.aws_factory import AWSSettings

        aws = self.config.aws
        for option, configured in (("endpoint", aws.endpoint), ("profile", aws.profile)):
            asked = spec.options.get(option)
            if asked and asked != configured:
                raise ForbiddenError(FORBIDDEN, f"clients may not choose the daemon's AWS {option}; "
                                                f"it is {configured or 'the environment default'!r}")
        region = spec.options.get("region") or aws.region or None
        return AWSSettings(region, aws.profile or None, aws.endpoint or None)

    def _aws_factory(self, spec: StoreSpec) -> AWSStoreFactory:
        from nbs.aws_factory import AWSStoreFactory

        settings = self._aws_settings(spec)
        key = (spec.table, spec.bucket, settings)
        with self._lock:
            factory = self._factories.get(key)
            if factory is None:
                cache_dir = ""
                if self.config.table_cache_size > 0:
                    label = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
                    cache_dir = os.path.join(self.config.cache_dir, "tables", label)
                    os.makedirs(cache_dir, mode=0o750, exist_ok=True)
                session = settings.session()
                self.backend.watch(session)
                factory = AWSStoreFactory(session, spec.table, spec.bucket,
                                          table_cache_size=self.config.table_cache_size,
                                          table_cache_dir=cache_dir, endpoint_url=settings.endpoint_url,
                                          caches=self.caches, small_table_cache=self.small_tables,
                                          small_table_cache_size=0)
                self._factories[key] = factory
            return factory

    def open(self, spec: StoreSpec, contents: ManifestContents | None) -> NomsBlockStore:
        if spec.protocol == "nbs":
            make_store_directory(spec.path, spec.sync)
            return local_store_with(spec.path, self.caches, contents=contents, sync=spec.sync)
        if spec.protocol == "mem":
            return self.mem.open(contents)
        if spec.protocol == "aws":
            return self._aws_factory(spec).create_store(spec.name, contents=contents)
        raise SpecError(f"this daemon cannot open {spec.protocol} stores")

    def closed(self, key: str) -> None:
        """A store ``open`` gave for ``key`` (``canonical``'s) is closed."""
        if key == "mem":
            self.mem.release()

    def open_files(self) -> int:
        return len(self.caches.fd_cache)

    def close(self) -> None:
        with self._lock:
            factories, self._factories = list(self._factories.values()), {}
        for factory in factories:
            factory.close()
        self.caches.fd_cache.drop()

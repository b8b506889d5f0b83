"""Noms Block Store (NBS) in Python, byte-compatible with Go Noms 7.18 / NBS storage version 4.

Typical use::

    import nbs
    store = nbs.new_local_store("/path/to/dir")
    addr = store.put(b"some bytes")
    store.commit(addr, store.root())
    assert store.get(addr) == b"some bytes"

AWS stores: ``nbs.open_store("aws://table:bucket/store")``, or ``nbs.aws_factory``
(``new_aws_store``, ``AWSStoreFactory``), imported on demand so that local use
does not load boto3.
"""

from nbs.addr import EMPTY_ADDR, Addr
from nbs.chunk_store import ChunkStore
from nbs.errors import (AccessDeniedError, AddressError, AWSError, AWSUnavailableError, BucketNotFoundError,
                        ChunkError, CorruptTableError, CredentialsError, DynamoTableNotFoundError,
                        InvalidStoreNameError, ManifestError, NBSError, SpecError, StoreClosedError,
                        StoreIOError, StoreNotFoundError, TableCacheError, TableNotFoundError,
                        VersionMismatchError)
from nbs.factory import LocalStoreFactory, new_local_store, new_memory_store, open_store
from nbs.manifest import NOMS_VERSION, STORAGE_VERSION
from nbs.spec import StoreSpec, parse_store_spec
from nbs.stats import Stats
from nbs.store import NomsBlockStore

__all__ = [
    "AWSError", "AWSUnavailableError", "AccessDeniedError", "BucketNotFoundError", "CredentialsError",
    "DynamoTableNotFoundError", "TableCacheError",
    "EMPTY_ADDR", "NOMS_VERSION", "STORAGE_VERSION", "AddressError", "Addr", "ChunkError", "ChunkStore",
    "CorruptTableError", "InvalidStoreNameError", "LocalStoreFactory", "ManifestError", "NBSError",
    "NomsBlockStore", "SpecError", "Stats", "StoreClosedError", "StoreIOError", "StoreNotFoundError", "StoreSpec",
    "TableNotFoundError", "VersionMismatchError", "new_local_store", "new_memory_store", "open_store",
    "parse_store_spec",
]

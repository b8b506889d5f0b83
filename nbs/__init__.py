"""Noms Block Store (NBS) in Python, byte-compatible with Go Noms 7.18 / NBS storage version 4.

Typical use::

    import nbs
    store = nbs.new_local_store("/path/to/dir")
    addr = store.put(b"some bytes")
    store.commit(addr, store.root())
    assert store.get(addr) == b"some bytes"
"""

from nbs.addr import EMPTY_ADDR, Addr
from nbs.chunk_store import ChunkStore
from nbs.errors import (AddressError, ChunkError, CorruptTableError, InvalidStoreNameError, ManifestError,
                        NBSError, SpecError, StoreClosedError, StoreNotFoundError, TableNotFoundError,
                        VersionMismatchError)
from nbs.factory import LocalStoreFactory, new_local_store, new_memory_store, open_store
from nbs.manifest import NOMS_VERSION, STORAGE_VERSION
from nbs.spec import StoreSpec, parse_store_spec
from nbs.stats import Stats
from nbs.store import NomsBlockStore

__all__ = [
    "EMPTY_ADDR", "NOMS_VERSION", "STORAGE_VERSION", "AddressError", "Addr", "ChunkError", "ChunkStore",
    "CorruptTableError", "InvalidStoreNameError", "LocalStoreFactory", "ManifestError", "NBSError",
    "NomsBlockStore", "SpecError", "Stats", "StoreClosedError", "StoreNotFoundError", "StoreSpec",
    "TableNotFoundError", "VersionMismatchError", "new_local_store", "new_memory_store", "open_store",
    "parse_store_spec",
]

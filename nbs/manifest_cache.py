"""A process-wide LRU of manifest contents, keyed by manifest name and bounded in bytes.

Each entry remembers when the I/O that produced it started, so a fetch that
waited behind another can reuse a newer result instead of reading again.
"""

from __future__ import annotations

from nbs.manifest import ManifestContents
from nbs.size_cache import SizeCache


class ManifestCache:
    def __init__(self, max_size: int) -> None:
        self._cache: SizeCache[str, tuple[ManifestContents, int]] = SizeCache(max_size)

    @property
    def max_size(self) -> int:
        return self._cache.max_size

    @property
    def total_size(self) -> int:
        return self._cache.total_size

    def get(self, name: str) -> tuple[ManifestContents, int] | None:
        return self._cache.get(name)

    def put(self, name: str, contents: ManifestContents, read_started: int) -> None:
        """Replace ``name``'s entry; ``read_started`` is when the producing I/O began."""
        self._cache.put(name, contents.size(), (contents, read_started))

"""Validation of store (namespace) names.

A store name keys a DynamoDB manifest item or names a directory under a local
factory's root.  It must be non-empty, must not start with ``*`` (which marks
table items in DynamoDB) and must not escape its root.
"""

from __future__ import annotations

from nbs.errors import InvalidStoreNameError

MAX_STORE_NAME = 1024


def validate_store_name(name: str) -> str:
    """Return ``name`` if it is a usable store name, else raise ``InvalidStoreNameError``."""
    if not isinstance(name, str) or not name:
        raise InvalidStoreNameError("store name must be a non-empty string")
    if len(name) > MAX_STORE_NAME:
        raise InvalidStoreNameError(f"store name longer than {MAX_STORE_NAME} characters")
    if name.startswith("*"):
        raise InvalidStoreNameError(f"store name {name!r} starts with '*', which marks table items")
    if "\x00" in name or any(ord(c) < 0x20 for c in name):
        raise InvalidStoreNameError(f"store name {name!r} contains control characters")
    if name.startswith("/") or any(part in ("", ".", "..") for part in name.split("/")):
        raise InvalidStoreNameError(f"store name {name!r} is not a clean relative name")
    return name

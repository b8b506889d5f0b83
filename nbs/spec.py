"""Store specs: the strings that name a store.

* ``mem`` - a fresh in-memory store;
* ``/some/dir``, ``relative/dir`` or ``nbs:/some/dir`` - a local store directory,
  optionally ending in ``?sync=false`` for a scratch store whose commits are not
  synced to disk (a ``?`` in a local spec always starts options);
* ``aws:table/bucket/store`` (Noms's form) or ``aws://table:bucket/store`` - a
  store whose manifest is an item of DynamoDB table ``table`` and whose table
  files live in S3 bucket ``bucket``.  Either AWS form may end in
  ``?region=..&profile=..&endpoint=..``.

Parsing follows go/spec: the protocol is whatever precedes the first ``:``, so
a local path containing ``:`` must be written ``nbs:...``.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass, field

from nbs.errors import InvalidStoreNameError, SpecError
from nbs.store_name import validate_store_name

AWS_OPTIONS = ("region", "profile", "endpoint")
LOCAL_OPTIONS = ("sync",)
_BOOLEANS = ("true", "false")
_AWS_NOMS = re.compile(r"([^/]+)/([^/]+)/(.*)")
_AWS_URL = re.compile(r"//([^:/]+):([^/]+)/(.*)")


@dataclass(frozen=True)
class StoreSpec:
    """A parsed store spec."""

    protocol: str  # "mem", "nbs" or "aws"
    path: str = ""
    table: str = ""
    bucket: str = ""
    name: str = ""
    options: dict[str, str] = field(default_factory=dict)

    @property
    def sync(self) -> bool:
        """Whether a local store syncs its commits to disk (the default; ``?sync=false`` turns it off)."""
        return self.options.get("sync", "true") == "true"

    def __str__(self) -> str:
        if self.protocol == "mem":
            return "mem"
        query = f"?{urllib.parse.urlencode(self.options)}" if self.options else ""
        if self.protocol == "nbs":
            return f"nbs:{self.path}{query}"
        return f"aws://{self.table}:{self.bucket}/{self.name}{query}"


def parse_store_spec(text: str) -> StoreSpec:
    """Parse a store spec string; raises ``SpecError`` with the reason."""
    if not isinstance(text, str) or not text:
        raise SpecError("Empty spec")
    if "\x00" in text:
        raise SpecError("store spec contains a NUL character")
    protocol, sep, rest = text.partition(":")
    if not sep:
        if text == "mem":
            return StoreSpec("mem")
        return _parse_local(text, text)
    if protocol == "mem":
        raise SpecError('In-memory database must be specified as "mem", not "mem:"')
    if protocol == "nbs":
        return _parse_local(text, rest)
    if protocol == "aws":
        return _parse_aws(text, rest)
    raise SpecError(f"Invalid database protocol {protocol} in {text}")


def _parse_local(text: str, rest: str) -> StoreSpec:
    path, _, query = rest.partition("?")
    if not path:
        raise SpecError("nbs: spec needs a directory path")
    options = _parse_options(text, query, "local", LOCAL_OPTIONS)
    if options.get("sync", "true") not in _BOOLEANS:
        raise SpecError(f"invalid local spec {text!r}: sync must be true or false")
    return StoreSpec("nbs", path=path, options=options)


def _parse_aws(text: str, rest: str) -> StoreSpec:
    rest, _, query = rest.partition("?")
    match = _AWS_URL.fullmatch(rest) if rest.startswith("//") else _AWS_NOMS.fullmatch(rest)
    if match is None:
        raise SpecError(f"invalid AWS spec {text!r}: want aws:table/bucket/store or aws://table:bucket/store")
    table, bucket, name = match.groups()
    try:
        validate_store_name(name)
    except InvalidStoreNameError as err:
        raise SpecError(f"invalid AWS spec {text!r}: {err}") from err
    options = _parse_options(text, query, "AWS", AWS_OPTIONS)
    return StoreSpec("aws", table=table, bucket=bucket, name=name, options=options)


def _parse_options(text: str, query: str, kind: str, known: tuple[str, ...]) -> dict[str, str]:
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True) if query else []
    except ValueError as err:
        raise SpecError(f"invalid {kind} spec options in {text!r}: {err}") from err
    options: dict[str, str] = {}
    for key, value in pairs:
        if key not in known:
            raise SpecError(f"unknown {kind} spec option {key!r} (known: {', '.join(known)})")
        options[key] = value
    return options


def local_path(spec: StoreSpec) -> str:
    """Absolute directory of an ``nbs`` spec."""
    return os.path.abspath(os.path.expanduser(spec.path))

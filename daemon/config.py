"""nbsd configuration: a TOML file, then command-line flags on top.

Sizes accept plain integers or strings with a binary suffix (``"4GiB"``,
``"256MiB"``, ``"512KiB"``).  See docs/nbsd.example.toml for every key.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from typing import Any

from nbs.errors import NBSError
from nbsclient.protocol import default_runtime_dir

_SIZE = re.compile(r"\s*(\d+)\s*(|B|KiB|MiB|GiB|TiB|K|M|G|T)\s*")
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20,
          "G": 1 << 30, "GiB": 1 << 30, "T": 1 << 40, "TiB": 1 << 40}


class ConfigError(NBSError, ValueError):
    """A configuration file or flag that cannot be used."""


def parse_size(value: int | str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.fullmatch(str(value))
    if match is None:
        raise ConfigError(f"bad size {value!r}: use bytes or a suffix like MiB/GiB")
    return int(match.group(1)) * _UNITS[match.group(2)]


def default_cache_dir() -> str:
    """systemd's ``CacheDirectory=`` (``$CACHE_DIRECTORY``), /var/cache/nbsd for root, else per user."""
    if os.environ.get("CACHE_DIRECTORY"):
        return os.environ["CACHE_DIRECTORY"].split(":")[0]
    if os.geteuid() == 0:
        return "/var/cache/nbsd"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "nbsd")


@dataclass
class AWSConfig:
    region: str = ""
    profile: str = ""
    endpoint: str = ""


@dataclass
class Config:
    endpoint: str = ""  # ipc:///path or tcp://127.0.0.1:port; empty = ipc in the runtime dir
    cache_dir: str = field(default_factory=default_cache_dir)
    cache_size: int = 1 << 30
    index_cache_size: int = 64 << 20
    max_open_files: int = 256
    table_cache_size: int = 0  # on-disk S3 table cache (AWS stores); 0 = off
    local_roots: list[str] = field(default_factory=list)
    threads: int = 16
    max_message_size: int = 256 << 20
    max_inflight_per_client: int = 16
    session_ttl: float = 900.0
    socket_mode: int = 0o660
    log_level: str = "INFO"
    aws: AWSConfig = field(default_factory=AWSConfig)

    @property
    def ipc_path(self) -> str | None:
        """The socket file of an ipc endpoint (None for tcp)."""
        endpoint = self.resolved_endpoint()
        return endpoint[len("ipc://"):] if endpoint.startswith("ipc://") else None

    def resolved_endpoint(self) -> str:
        return self.endpoint or f"ipc://{os.path.join(default_runtime_dir(), 'nbsd.sock')}"

    def validate(self) -> Config:
        endpoint = self.resolved_endpoint()
        if endpoint.startswith("tcp://"):
            host = endpoint[len("tcp://"):].rsplit(":", 1)[0]
            if host not in ("127.0.0.1", "localhost", "[::1]"):
                raise ConfigError(f"tcp endpoints must be on loopback, not {host!r}")
        elif not endpoint.startswith("ipc://"):
            raise ConfigError(f"endpoint must be ipc://PATH or tcp://127.0.0.1:PORT, not {endpoint!r}")
        if self.cache_size < (1 << 20):
            raise ConfigError("cache_size must be at least 1 MiB")
        if self.max_open_files < 16:
            raise ConfigError("max_open_files must be at least 16")
        if self.threads < 1:
            raise ConfigError("threads must be at least 1")
        self.local_roots = [os.path.realpath(r) for r in self.local_roots]
        return self


_SIZES = {"cache_size", "index_cache_size", "table_cache_size", "max_message_size"}


def load_config(path: str | None, overrides: dict[str, Any]) -> Config:
    """Read ``path`` (if given) and apply non-None ``overrides`` (flag values)."""
    raw: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"cannot read config {path}: {err}") from err
    aws_raw = raw.pop("aws", {})
    config = Config()
    known = {f.name for f in fields(Config)} - {"aws"}
    for key, value in [*raw.items(), *((k, v) for k, v in overrides.items() if v is not None and k in known)]:
        if key not in known:
            raise ConfigError(f"unknown config key {key!r}")
        setattr(config, key, parse_size(value) if key in _SIZES else value)
    if not isinstance(aws_raw, dict):
        raise ConfigError("[aws] must be a table")
    for key, value in [*aws_raw.items(), *((k[4:], v) for k, v in overrides.items()
                                           if k.startswith("aws_") and v is not None)]:
        if key not in {f.name for f in fields(AWSConfig)}:
            raise ConfigError(f"unknown [aws] key {key!r}")
        setattr(config.aws, key, str(value))
    return config.validate()

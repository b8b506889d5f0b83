"""nbsd configuration: a TOML file, then command-line flags on top, validated as one typed model.

Every value is checked for type and range before the daemon opens anything,
because a slip in this file decides what the daemon exposes: a string where a
list belongs must not become a list of characters.  A wrong value is one
``ConfigError`` line naming the key (or flag), what it got and what it
expects; unknown keys are errors too.  Values are strict: TOML has types, and
``threads = "8"`` is refused rather than guessed at.  Sizes take plain byte
counts or strings with a binary suffix (``"4GiB"``, ``"256MiB"``).
systemd/nbsd.toml documents every key.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from nbs.errors import NBSError
from nbsclient.curve import CurveKeyError, load_key_pair
from nbsclient.protocol import ENDPOINT_ENV, SYSTEM_SOCKET

_SIZE = re.compile(r"\s*(\d+)\s*(|B|KiB|MiB|GiB|TiB|K|M|G|T)\s*")
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20,
          "G": 1 << 30, "GiB": 1 << 30, "T": 1 << 40, "TiB": 1 << 40}
_ENDPOINT = re.compile(r"ipc:///.+|tcp://(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})")
_AWS_STORE_PATTERN = re.compile(r"\*|[^:/\s]+:[^/\s]+/\S+")
_ADDRESS = re.compile(r"(\[[0-9a-fA-F:.]+\]|[0-9.]+|localhost):(\d{1,5})")
MiB = 1 << 20


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


# -- value checks: each raises, and the field's description says what is expected --------------------

def _size(value: object) -> object:
    """Size strings become byte counts; anything else is left for the integer check."""
    return parse_size(value) if isinstance(value, str) else value


def _endpoint(value: str) -> str:
    match = _ENDPOINT.fullmatch(value)
    if value and (match is None or (match.group(2) is not None and not 0 < int(match.group(2)) < 65536)):
        raise ValueError("bad endpoint")
    return value


def metrics_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IP literal, ``[v6]`` or ``localhost``) as the pair a server binds; ValueError if bad.

    Names other than ``localhost`` are refused: what a name resolves to may change, and with it what is exposed.
    """
    match = _ADDRESS.fullmatch(value)
    port = int(match.group(2)) if match else 0
    if match is None or not 0 < port < 65536:
        raise ValueError("bad address")
    host = match.group(1).strip("[]")
    if host != "localhost":
        ipaddress.ip_address(host)  # ValueError for 999.1.1.1 and the like
    return host, port


def is_loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


def _metrics(value: str) -> str:
    if value:
        metrics_address(value)
    return value


def _path(value: str) -> str:
    if not value or "\x00" in value:
        raise ValueError("bad path")
    return os.path.abspath(os.path.expanduser(value))


def _root(value: str) -> str:
    return os.path.realpath(_path(value))  # symlinks resolved once, as requests' paths are


def _aws_store_pattern(value: str) -> str:
    if _AWS_STORE_PATTERN.fullmatch(value) is None:
        raise ValueError("bad pattern")
    return value


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _socket_mode(value: int) -> int:
    if value & ~0o770 or (value & 0o600) != 0o600:
        raise ValueError("bad mode")
    return value


def _url(value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("not an http(s) URL")
    return value


def _secret_key_file(value: str) -> str:
    if not value:
        return value
    load_key_pair(value)  # CurveKeyError (a ValueError) says what is wrong with it
    return _path(value)


def _directory(value: str) -> str:
    if value and not os.path.isdir(value):
        raise ValueError("not a directory")
    return _path(value) if value else value


Size = Annotated[int, BeforeValidator(_size)]


def _field(default: Any, expects: str, **limits: Any) -> Any:
    """A setting with its default and what it must be (the error message's words)."""
    return Field(default, description=expects, **limits)


class AWSConfig(BaseModel):
    """``[aws]``: where and as whom the daemon reaches AWS; empty means the environment's choice."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    region: str = _field("", 'an AWS region name such as "eu-west-1", or "" for the environment\'s')
    profile: str = _field("", 'a profile name of the AWS config files, or "" for the environment\'s')
    endpoint: Annotated[str, AfterValidator(_url)] = _field(
        "", 'an http(s):// URL of S3 and DynamoDB (e.g. an emulator), or "" for AWS itself')


class Config(BaseModel):
    """The daemon's settings; systemd/nbsd.toml says what each is for."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    endpoint: Annotated[str, AfterValidator(_endpoint)] = _field(
        "", 'ipc:///absolute/path or tcp://127.0.0.1:PORT (loopback only), or "" for the default socket')
    cache_dir: Annotated[str, AfterValidator(_path)] = Field(
        default_factory=default_cache_dir, description="a directory path")
    cache_size: Size = _field(1 << 30, 'a size of at least 1MiB (bytes, or a string such as "8GiB")', ge=MiB)
    index_cache_size: Size = _field(64 * MiB, 'a size (bytes, or a string such as "256MiB")', ge=0)
    max_open_files: int = _field(256, "an integer from 16 to 1048576", ge=16, le=1 << 20)
    table_cache_size: Size = _field(0, 'a size (bytes, or a string such as "10GiB"); 0 turns it off', ge=0)
    small_table_cache_size: Size = _field(
        32 * MiB, 'a size (bytes, or a string such as "32MiB"); 0 turns it off', ge=0)
    local_roots: list[Annotated[str, AfterValidator(_root)]] = _field([], "a list of directories")
    threads: int = _field(16, "an integer from 1 to 1024", ge=1, le=1024)
    max_message_size: Size = _field(256 * MiB, 'a size from 1MiB to 2GiB (bytes, or a string such as "256MiB")',
                                    ge=MiB, le=2 << 30)
    max_inflight_per_client: int = _field(16, "an integer from 1 to 65536", ge=1, le=65536)
    upload_memory: Size = _field(1 << 30, 'a size of at least 16MiB (bytes, or a string such as "1GiB")',
                                 ge=16 * MiB)
    session_ttl: float = _field(900.0, "a number of seconds above 0", gt=0)
    socket_mode: Annotated[int, AfterValidator(_socket_mode)] = _field(
        0o660, "a file mode such as 0o660: owner read-write, group bits optional, none for others")
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                         BeforeValidator(_upper)] = _field(
        "INFO", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    aws_stores: list[Annotated[str, AfterValidator(_aws_store_pattern)]] = _field(
        [], 'a list of glob patterns over "table:bucket/store" such as "manifests:tables/team-*", or ["*"]')
    allow_mem: bool = _field(False, "true or false")
    mem_store_size: Size = _field(64 * MiB, 'a size of at least 1MiB (bytes, or a string such as "64MiB")', ge=MiB)
    client_fast_path: bool = _field(True, "true or false")
    client_part_memory: bool = _field(True, "true or false")
    curve_secret_key: Annotated[str, AfterValidator(_secret_key_file)] = _field(
        "", "a zmq.auth secret-key file (not readable by others), or \"\"")
    curve_client_keys: Annotated[str, AfterValidator(_directory)] = _field(
        "", 'a directory of allowed clients\' zmq.auth public-key files (*.key), or ""')
    metrics: Annotated[str, AfterValidator(_metrics)] = _field(
        "", 'HOST:PORT of the Prometheus /metrics endpoint such as "127.0.0.1:9464", or "" for none')
    metrics_allow_remote: bool = _field(False, "true or false")
    aws: AWSConfig = _field(AWSConfig(), "a table of region, profile and endpoint strings")

    @property
    def ipc_path(self) -> str | None:
        """The socket file of an ipc endpoint (None for tcp)."""
        endpoint = self.resolved_endpoint()
        return endpoint[len("ipc://"):] if endpoint.startswith("ipc://") else None

    def resolved_endpoint(self) -> str:
        """The configured endpoint, else ``$NBSD_ENDPOINT``, else the system socket: the same for every user."""
        return self.endpoint or os.environ.get(ENDPOINT_ENV) or f"ipc://{SYSTEM_SOCKET}"

    @property
    def curve(self) -> bool:
        """Whether clients must authenticate with CURVE keys."""
        return bool(self.curve_secret_key)


def load_config(path: str | None, overrides: Mapping[str, Any], flags: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (if given), apply non-None ``overrides`` (flag values by key; ``aws_region`` for
    ``[aws] region``) and validate the result.  ``flags`` names the flag of each key, for messages."""
    raw: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"cannot read config {path}: {err}") from err
    given = {key: value for key, value in overrides.items() if value is not None}
    for key, value in given.items():
        aws = raw.setdefault("aws", {}) if key.startswith("aws_") and key[4:] in AWSConfig.model_fields else None
        if aws is None:
            raw[key] = value
        elif isinstance(aws, dict):  # else validation reports the [aws] that is not a table
            aws[key[4:]] = value
    try:
        config = Config.model_validate(raw)
    except ValidationError as err:
        raise _explain(err, raw, given, flags or {}) from None
    return config


def check_serving(config: Config) -> None:
    """Rules for serving, over several keys: CURVE takes both key settings, and a tcp endpoint takes CURVE."""
    if bool(config.curve_secret_key) != bool(config.curve_client_keys):
        raise ConfigError("config: curve_secret_key and curve_client_keys go together: set both or neither")
    endpoint = config.resolved_endpoint()
    if not config.endpoint and _ENDPOINT.fullmatch(endpoint) is None:
        raise ConfigError(f"${ENDPOINT_ENV} must be ipc:///absolute/path or tcp://127.0.0.1:PORT (loopback only), "
                          f"got {endpoint!r}")
    if endpoint.startswith("tcp://") and not config.curve:
        raise ConfigError(f"config: endpoint {endpoint} needs curve_secret_key and curve_client_keys: "
                          "tcp is open to every local user, so clients must authenticate")
    if config.metrics and not config.metrics_allow_remote and not is_loopback(metrics_address(config.metrics)[0]):
        raise ConfigError(f"config: metrics {config.metrics} is not a loopback address: anyone who reaches it reads "
                          "the daemon's figures; set metrics_allow_remote = true to serve them beyond this host")


SECRET_KEYS = frozenset({"curve_secret_key"})


def effective(config: Config) -> dict[str, Any]:
    """Every setting as it applies (the endpoint resolved), with secrets only said to be set: for logs and people."""
    shown = config.model_dump()
    shown["endpoint"] = config.resolved_endpoint()
    for key in SECRET_KEYS:
        shown[key] = "(set)" if shown[key] else ""
    return shown


def _explain(err: ValidationError, raw: Mapping[str, Any], given: Mapping[str, Any],
             flags: Mapping[str, str]) -> ConfigError:
    """One line for the first problem: the key or flag, what it got and what it expects."""
    problem = err.errors()[0]
    loc = [str(part) for part in problem["loc"]]
    nested = loc[0] == "aws" and len(loc) > 1
    key = ".".join(loc[:2]) if nested else loc[0]
    flat_key = f"aws_{loc[1]}" if nested else key
    where = flags.get(flat_key, f"--{flat_key.replace('_', '-')}") if flat_key in given else f"config: {key}"
    if problem["type"] == "extra_forbidden":
        return ConfigError(f"config: unknown key {key!r}" if not nested else f"config: unknown [aws] key {loc[1]!r}")
    model = AWSConfig if nested else Config
    field = model.model_fields.get(loc[-1] if nested else key)
    expects = field.description if field is not None else problem["msg"]
    value = raw.get("aws", {}).get(loc[1]) if nested else raw.get(key)
    cause = problem.get("ctx", {}).get("error")
    detail = f" (it {cause.reason})" if isinstance(cause, CurveKeyError) else ""
    return ConfigError(f"{where} must be {expects}, got {_describe(value)}{detail}")


def _describe(value: object) -> str:
    """A value as the user wrote it, with its TOML type: ``the string "/srv"``, ``the integer 8``."""
    kinds = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "list"),
             (dict, "table"))
    kind = next((name for cls, name in kinds if isinstance(value, cls)), type(value).__name__)
    return f"the {kind} {json.dumps(value, default=str)}"

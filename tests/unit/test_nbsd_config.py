import os
import subprocess
import sys
from pathlib import Path

import pytest
import zmq.auth

from nbsd.config import Config, ConfigError, check_serving, load_config, parse_size

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text,value", [(5, 5), ("5", 5), ("4KiB", 4096), ("2 MiB", 2 << 20), ("1G", 1 << 30)])
def test_parse_size(text: object, value: int) -> None:
    assert parse_size(text) == value  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "lots", "-1", "1.5GiB", "3PB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_size(text)


def _load(tmp_path: Path, text: str, overrides: dict[str, object] | None = None) -> Config:
    cfg = tmp_path / "nbsd.toml"
    cfg.write_text(text)
    config = load_config(str(cfg), overrides or {}, {"local_roots": "--local-root", "aws_stores": "--aws-store"})
    check_serving(config)
    return config


def test_file_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "nbsd.toml"
    cfg.write_text('cache_size = "64MiB"\nthreads = 3\nlocal_roots = ["/srv"]\naws_stores = ["t:b/team-*"]\n'
                   '[aws]\nregion = "eu-west-1"\n')
    config = load_config(str(cfg), {"threads": 5, "cache_dir": None, "aws_endpoint": "http://127.0.0.1:9",
                                    "aws_stores": ["*"], "allow_mem": True, "mem_store_size": "8MiB"})
    assert config.cache_size == 64 << 20 and config.threads == 5
    assert config.local_roots == ["/srv"] and config.aws_stores == ["*"]
    assert config.allow_mem and config.mem_store_size == 8 << 20
    assert config.aws.region == "eu-west-1" and config.aws.endpoint == "http://127.0.0.1:9"


def test_secure_defaults() -> None:
    config = load_config(None, {})
    assert config.aws_stores == [] and not config.allow_mem and config.local_roots == []
    assert config.client_fast_path and not config.curve and config.socket_mode == 0o660


def test_example_config_in_repository_loads() -> None:
    config = load_config(str(ROOT / "systemd" / "nbsd.toml"), {})
    assert config.resolved_endpoint() == "ipc:///run/nbsd/nbsd.sock" and config.cache_size == 8 << 30
    assert config.aws_stores == ["manifests:tables/team-*"] and config.client_fast_path


@pytest.mark.parametrize("text,message", [
    ('local_roots = "/srv/noms"', 'config: local_roots must be a list of directories, got the string "/srv/noms"'),
    ('local_roots = ["/srv", 3]', 'config: local_roots must be a list of directories, got the list ["/srv", 3]'),
    ('threads = "8"', 'config: threads must be an integer from 1 to 1024, got the string "8"'),
    ("threads = 0", "config: threads must be an integer from 1 to 1024, got the integer 0"),
    ('log_level = "verbose"',
     'config: log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got the string "verbose"'),
    ("cache_size = true", "config: cache_size must be a size of at least 1MiB (bytes, or a string such as "
                          '"8GiB"), got the boolean true'),
    ('aws_stores = "*"', "config: aws_stores must be a list of glob patterns over \"table:bucket/store\" such as "
                         '"manifests:tables/team-*", or ["*"], got the string "*"'),
    ("aws = 5", "config: aws must be a table of region, profile and endpoint strings, got the integer 5"),
    ("[aws]\nregion = 1", 'config: aws.region must be an AWS region name such as "eu-west-1", or "" for the '
                          "environment's, got the integer 1"),
    ('colour = "red"', "config: unknown key 'colour'"),
    ("[aws]\nkey = 1", "config: unknown [aws] key 'key'"),
])
def test_wrong_values_are_named_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert str(err.value) == message


@pytest.mark.parametrize("text", [
    'endpoint = "tcp://10.0.0.1:5"', 'endpoint = "http://x"', 'endpoint = "ipc://relative.sock"',
    'endpoint = "tcp://127.0.0.1:70000"', 'cache_size = "1KiB"', 'cache_dir = ""', "socket_mode = 660",
    "socket_mode = 0o666", 'aws_stores = ["manifests/tables/team-*"]', 'aws_stores = [""]', "allow_mem = 1",
    'mem_store_size = "1KiB"', 'client_fast_path = "no"', "client_part_memory = 1", "session_ttl = 0",
    'max_message_size = "8GiB"',
    'curve_client_keys = "/no/such/dir"', '[aws]\nendpoint = "127.0.0.1:5000"', "= broken",
    'upload_memory = "8MiB"', 'upload_memory = "lots"', "upload_memory = 1.5"])
def test_bad_configs_rejected(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        _load(tmp_path, text)


def test_flags_are_named_as_flags(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^--threads must be an integer from 1 to 1024, got the integer 0$"):
        _load(tmp_path, "threads = 4", {"threads": 0})
    with pytest.raises(ConfigError, match="^--aws-store must be a list of glob patterns"):
        _load(tmp_path, "", {"aws_stores": ["no-colon/x"]})
    with pytest.raises(ConfigError, match='^--cache-size must be .*, got the string "lots"$'):
        _load(tmp_path, "", {"cache_size": "lots"})


def test_tcp_needs_curve_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs curve_secret_key and curve_client_keys"):
        _load(tmp_path, 'endpoint = "tcp://127.0.0.1:5555"')
    public, secret = zmq.auth.create_certificates(str(tmp_path), "server")  # written with the umask's mode
    clients = tmp_path / "clients"
    clients.mkdir()
    os.chmod(secret, 0o644)
    with pytest.raises(ConfigError, match=r'got the string ".*server.key_secret" \(it is readable by every user'):
        _load(tmp_path, f'endpoint = "tcp://127.0.0.1:5555"\ncurve_secret_key = "{secret}"\n'
                        f'curve_client_keys = "{clients}"')
    os.chmod(secret, 0o600)
    with pytest.raises(ConfigError, match="go together"):
        _load(tmp_path, f'curve_secret_key = "{secret}"')
    with pytest.raises(ConfigError, match="holds no secret key"):
        _load(tmp_path, f'curve_secret_key = "{public}"\ncurve_client_keys = "{clients}"')
    config = _load(tmp_path, f'endpoint = "tcp://127.0.0.1:5555"\ncurve_secret_key = "{secret}"\n'
                             f'curve_client_keys = "{clients}"')
    assert config.curve


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config("/no/such/nbsd.toml", {})


def test_bad_config_exits_2_with_one_line_before_opening_anything(tmp_path: Path) -> None:
    cfg = tmp_path / "nbsd.toml"
    cache = tmp_path / "cache"
    cfg.write_text(f'cache_dir = "{cache}"\nlocal_roots = "/srv/noms"\n')
    proc = subprocess.run([sys.executable, "-m", "nbsd", "serve", "--config", str(cfg),
                           "--socket", str(tmp_path / "s.sock")], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == 'nbsd: config: local_roots must be a list of directories, got the string "/srv/noms"\n'
    assert not cache.exists() and not (tmp_path / "s.sock").exists()
    proc = subprocess.run([sys.executable, "-m", "nbsd", "serve", "--threads", "eight"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr == "nbsd serve: argument --threads: invalid int value: 'eight'\n"

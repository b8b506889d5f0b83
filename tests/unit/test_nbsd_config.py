from pathlib import Path

import pytest

from nbsd.config import ConfigError, load_config, parse_size


@pytest.mark.parametrize("text,value", [(5, 5), ("5", 5), ("4KiB", 4096), ("2 MiB", 2 << 20), ("1G", 1 << 30)])
def test_parse_size(text: object, value: int) -> None:
    assert parse_size(text) == value  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "lots", "-1", "1.5GiB", "3PB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_size(text)


def test_file_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "nbsd.toml"
    cfg.write_text('cache_size = "64MiB"\nthreads = 3\nlocal_roots = ["/srv"]\n[aws]\nregion = "eu-west-1"\n')
    config = load_config(str(cfg), {"threads": 5, "cache_dir": None, "aws_endpoint": "http://127.0.0.1:9"})
    assert config.cache_size == 64 << 20 and config.threads == 5
    assert config.local_roots == ["/srv"]
    assert config.aws.region == "eu-west-1" and config.aws.endpoint == "http://127.0.0.1:9"


def test_example_config_in_repository_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    config = load_config(str(root / "systemd" / "nbsd.toml"), {})
    assert config.resolved_endpoint() == "ipc:///run/nbsd/nbsd.sock" and config.cache_size == 8 << 30


@pytest.mark.parametrize("text", ['colour = "red"', "[aws]\nkey = 1", 'endpoint = "tcp://10.0.0.1:5"',
                                  'endpoint = "http://x"', "threads = 0", 'cache_size = "1KiB"', "= broken"])
def test_bad_configs_rejected(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError):
        load_config(str(cfg), {})


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config("/no/such/nbsd.toml", {})

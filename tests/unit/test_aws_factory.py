"""AWS settings and clients: region, profile and endpoint from arguments, spec options or the environment."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from nbs.aws_factory import AWSSettings, AWSStoreFactory, aws_clients
from nbs.errors import CredentialsError


def test_settings_from_spec_options(monkeypatch: pytest.MonkeyPatch) -> None:
    assert AWSSettings.from_options({}) == AWSSettings()
    assert AWSSettings.from_options({"region": "eu-west-1", "profile": "p", "endpoint": "http://127.0.0.1:1"}) == \
        AWSSettings("eu-west-1", "p", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert AWSSettings.from_options({"region": "eu-west-1"}).session().region_name == "eu-west-1"


@pytest.mark.parametrize("env,region", [
    ({"AWS_REGION": "ap-south-1"}, "ap-south-1"),
    ({"AWS_DEFAULT_REGION": "eu-north-1"}, "eu-north-1"),
    ({"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "eu-north-1"}, "ap-south-1"),  # as the AWS SDKs rank them
])
def test_every_constructor_takes_the_region_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                                 env: dict[str, str], region: str) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with AWSStoreFactory(None, "table", "bucket") as factory:
        clients = [factory.s3, factory.ddb, *aws_clients(), *aws_clients(AWSSettings.from_options({}).session())]
        assert [c.meta.region_name for c in clients] == [region] * len(clients)
    # A caller's own session keeps the region it resolved; AWS_REGION fills in when it found none.
    assert aws_clients(boto3.Session())[0].meta.region_name == env.get("AWS_DEFAULT_REGION", region)


def test_factory_takes_region_profile_and_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    config.write_text("[profile nbs-test]\nregion = eu-central-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with AWSStoreFactory(None, "table", "bucket", region="sa-east-1", endpoint_url="http://127.0.0.1:9") as factory:
        assert (factory.s3.meta.region_name, factory.s3.meta.endpoint_url) == ("sa-east-1", "http://127.0.0.1:9")
    with AWSStoreFactory(None, "table", "bucket", profile="nbs-test") as factory:
        assert factory.ddb.meta.region_name == "eu-central-1"
    with pytest.raises(CredentialsError):
        AWSStoreFactory(None, "table", "bucket", profile="no-such-profile")
    with pytest.raises(ValueError, match="not both"):
        AWSStoreFactory(boto3.Session(), "table", "bucket", region="sa-east-1")


def test_profile_and_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    config.write_text("[profile nbs-test]\nregion = eu-central-1\n"
                      "aws_access_key_id = AKIAPROFILE\naws_secret_access_key = secret\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # boto3 prefers it to the profile's region
    session = AWSSettings(profile="nbs-test").session()
    assert session.region_name == "eu-central-1"
    credentials = session.get_credentials()
    assert credentials is not None and credentials.access_key == "AKIAPROFILE"
    assert AWSSettings(region="us-west-2", profile="nbs-test").session().region_name == "us-west-2"
    with pytest.raises(CredentialsError):
        AWSSettings(profile="no-such-profile").session()


def test_client_configuration() -> None:
    s3, ddb = aws_clients(AWSSettings(region="us-west-2").session(), "http://127.0.0.1:9", 48)
    for client in (s3, ddb):
        assert client.meta.endpoint_url == "http://127.0.0.1:9"
        assert client.meta.region_name == "us-west-2"
        config = vars(client.meta.config)  # botocore sets the options as attributes its stubs do not declare
        assert config["retries"]["mode"] == "standard"
        assert config["max_pool_connections"] == 48
    assert vars(s3.meta.config)["s3"]["addressing_style"] == "path"


def test_factory_needs_table_bucket_and_cache_directory() -> None:
    with pytest.raises(ValueError):
        AWSStoreFactory(None, "", "bucket")
    with pytest.raises(ValueError):
        AWSStoreFactory(None, "table", "")
    with pytest.raises(ValueError):
        AWSStoreFactory(None, "table", "bucket", table_cache_size=1 << 20)

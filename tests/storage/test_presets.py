"""Provider presets: pure functions of the source and the store settings."""

from __future__ import annotations

import pytest
from botocore import UNSIGNED
from botocore.config import Config

from gateway.settings import Scheme, SettingsError, Source, StoreSettings, parse_source
from gateway.storage.presets import CONNECT_TIMEOUT, MAX_ATTEMPTS, READ_TIMEOUT, resolve

CHECKSUMS = ("request_checksum_calculation", "response_checksum_validation")


def test_aws_defaults() -> None:
    preset = resolve(parse_source("s3://bucket/prefix"), StoreSettings())
    assert preset.endpoint_url is None
    assert preset.region is None  # left to the AWS chain
    assert preset.where == "AWS"
    assert preset.conditional_writes is True
    assert preset.config == {
        "max_pool_connections": 64,
        "retries": {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        "s3": {"payload_signing_enabled": False},  # crc32c checksums and TLS guard bodies
    }
    for name in CHECKSUMS:  # AWS keeps botocore's default checksums
        assert name not in preset.config


def test_aws_region_and_pool() -> None:
    preset = resolve(Source("s3", "b"), StoreSettings(region="eu-west-3", max_connections=7))
    assert preset.region == "eu-west-3"
    assert preset.config["max_pool_connections"] == 7


def test_s3_compatible_endpoint() -> None:
    settings = StoreSettings(endpoint_url="http://127.0.0.1:9000/", force_path_style=True)
    preset = resolve(Source("s3", "b"), settings)
    assert preset.endpoint_url == "http://127.0.0.1:9000"
    assert preset.where == "http://127.0.0.1:9000"
    assert preset.config["s3"] == {"addressing_style": "path", "payload_signing_enabled": False}
    assert preset.conditional_writes is False  # not known to enforce If-None-Match
    for name in CHECKSUMS:
        assert preset.config[name] == "when_required"


def test_unsigned_requests() -> None:
    preset = resolve(Source("s3", "b"), StoreSettings(no_sign_request=True))
    assert preset.config["signature_version"] is UNSIGNED
    assert "addressing_style" not in preset.config["s3"]  # virtual-hosted unless asked


def test_r2_needs_the_account_id() -> None:
    with pytest.raises(SettingsError, match="account id") as caught:
        resolve(parse_source("r2://photos"), StoreSettings())
    assert "--account-id" in str(caught.value)


def test_r2() -> None:
    preset = resolve(Source("r2", "photos"), StoreSettings(account_id="abc123"))
    assert preset.endpoint_url == "https://abc123.r2.cloudflarestorage.com"
    assert preset.region == "auto"
    assert preset.conditional_writes is True
    for name in CHECKSUMS:
        assert preset.config[name] == "when_required"


def test_r2_with_explicit_endpoint_needs_no_account_id() -> None:
    settings = StoreSettings(endpoint_url="https://r2.example.test", region="wnam")
    preset = resolve(Source("r2", "photos"), settings)
    assert preset.endpoint_url == "https://r2.example.test"
    assert preset.region == "wnam"


def test_gcs() -> None:
    preset = resolve(Source("gs", "logs"), StoreSettings())
    assert preset.endpoint_url == "https://storage.googleapis.com"
    assert preset.region == "auto"
    for name in CHECKSUMS:
        assert preset.config[name] == "when_required"
    given = resolve(Source("gs", "logs"), StoreSettings(region="europe-west1"))
    assert given.region == "europe-west1"


def test_explicit_endpoint_overrides_the_preset() -> None:
    settings = StoreSettings(endpoint_url="http://localhost:4443", account_id="abc")
    assert resolve(Source("gs", "b"), settings).endpoint_url == "http://localhost:4443"
    assert resolve(Source("r2", "b"), settings).endpoint_url == "http://localhost:4443"


@pytest.mark.parametrize("url", ["localhost:9000", "ftp://host", "http://"])
def test_bad_endpoint(url: str) -> None:
    with pytest.raises(SettingsError, match="endpoint-url"):
        resolve(Source("s3", "b"), StoreSettings(endpoint_url=url))


def test_local_folder_is_not_a_preset() -> None:
    with pytest.raises(SettingsError):
        resolve(Source("file", "/tmp/x"), StoreSettings())


def test_zero_connections() -> None:
    with pytest.raises(SettingsError, match="max-connections"):
        resolve(Source("s3", "b"), StoreSettings(max_connections=0))


@pytest.mark.parametrize(
    ("scheme", "settings"),
    [
        ("s3", StoreSettings()),
        ("s3", StoreSettings(endpoint_url="http://127.0.0.1:9000", force_path_style=True)),
        ("s3", StoreSettings(no_sign_request=True)),
        ("gs", StoreSettings(force_path_style=True)),
        ("r2", StoreSettings(account_id="a", no_sign_request=True)),
    ],
)
def test_config_is_accepted_by_botocore(scheme: Scheme, settings: StoreSettings) -> None:
    Config(**resolve(Source(scheme, "b"), settings).config)  # raises on unknown options

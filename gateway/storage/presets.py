"""Provider presets: where a bucket of each scheme lives and how botocore must talk to it.

``resolve`` is a pure function of the settings, so it can be tested without a network;
``open_client`` makes the aiobotocore client from its answer. ``s3://`` is
AWS unless an endpoint is given (MinIO, Ceph, ...); ``r2://`` is Cloudflare R2 (needs the
account id); ``gs://`` is Google Cloud Storage through its S3-compatible XML API (HMAC
keys). An explicit ``--endpoint-url`` always wins over a preset's endpoint.

Recent botocore sends CRC checksum headers (and validates response checksums) by default;
R2, GCS and older MinIO reject or mangle them, so every non-AWS endpoint asks for
checksums only where an operation requires them.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import UNSIGNED
from botocore import exceptions as boto

from gateway.settings import SettingsError, Source, StoreSettings

CONNECT_TIMEOUT = 10.0  # seconds to open a connection
READ_TIMEOUT = 60.0  # seconds a socket read may stall
MAX_ATTEMPTS = 3  # botocore "standard" retries: the first try plus two more, in all
GCS_ENDPOINT = "https://storage.googleapis.com"
R2_ENDPOINT = "https://{account_id}.r2.cloudflarestorage.com"


@dataclass(frozen=True, slots=True)
class Preset:
    """The effective connection parameters of one store."""

    endpoint_url: str | None  # None: AWS, resolved by botocore from the region
    region: str | None  # None: from the AWS chain (env, profile), else botocore's default
    config: dict[str, Any]  # keyword arguments for botocore's Config / AioConfig
    # The provider is known to enforce ``If-None-Match: *`` on PutObject. When False the
    # store does a HEAD before the conditional PUT (see S3Store.put).
    conditional_writes: bool

    @property
    def where(self) -> str:
        return self.endpoint_url or "AWS"


def _check_endpoint(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"--endpoint-url {url!r} must be an http:// or https:// URL")
    return url.rstrip("/")


def resolve(source: Source, settings: StoreSettings) -> Preset:
    """Endpoint, region and botocore Config keyword arguments for ``source``."""
    if source.scheme == "file":
        raise SettingsError(f"{source} is a local folder, not an object store")
    if settings.max_connections < 1:
        raise SettingsError("--max-connections must be at least 1")

    endpoint: str | None
    region = settings.region
    conditional_writes = False
    if source.scheme == "r2":
        if settings.endpoint_url:
            endpoint = settings.endpoint_url
        elif not settings.account_id:
            raise SettingsError(
                f"{source} needs the Cloudflare account id: set --account-id "
                "(or BUCKETDAV_ACCOUNT_ID), or give --endpoint-url"
            )
        else:
            endpoint = R2_ENDPOINT.format(account_id=settings.account_id)
        region = region or "auto"
        conditional_writes = not settings.endpoint_url
    elif source.scheme == "gs":
        endpoint = settings.endpoint_url or GCS_ENDPOINT
        region = region or "auto"
    else:  # s3: AWS, or any S3-compatible store at an explicit endpoint
        endpoint = settings.endpoint_url
        conditional_writes = endpoint is None
    if endpoint is not None:
        endpoint = _check_endpoint(endpoint)

    config: dict[str, Any] = {
        "max_pool_connections": settings.max_connections,
        "retries": {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
    }
    if settings.force_path_style:
        config["s3"] = {"addressing_style": "path"}
    if settings.no_sign_request:
        config["signature_version"] = UNSIGNED
    if endpoint is not None:  # anything but AWS itself
        config["request_checksum_calculation"] = "when_required"
        config["response_checksum_validation"] = "when_required"
    return Preset(endpoint, region, config, conditional_writes)


async def open_client(preset: Preset, profile: str | None) -> tuple[Any, AsyncExitStack]:
    """A long-lived aiobotocore S3 client (and its connection pool) for ``preset``, with the
    stack that closes it. Does not talk to the store."""
    session = AioSession(profile=profile)
    stack = AsyncExitStack()
    try:
        client = await stack.enter_async_context(
            session.create_client(
                "s3",
                region_name=preset.region,
                endpoint_url=preset.endpoint_url,
                config=AioConfig(**preset.config),
            )
        )
    except boto.ProfileNotFound:
        await stack.aclose()
        raise SettingsError(f"--profile {profile!r}: no such AWS profile") from None
    except BaseException:
        await stack.aclose()
        raise
    return client, stack

"""Provider presets: where a bucket of each scheme lives and how botocore must talk to it.

``resolve`` is a pure function of the settings, so it can be tested without a network;
``open_client`` makes the aiobotocore client from its answer. ``s3://`` is
AWS unless an endpoint is given (MinIO, Ceph, ...); ``r2://`` is Cloudflare R2 (needs the
account id); ``gs://`` is Google Cloud Storage through its S3-compatible XML API (HMAC
keys). An explicit ``--endpoint-url`` always wins over a preset's endpoint.

Recent botocore sends CRC checksum headers (and validates response checksums) by default;
R2, GCS and older MinIO reject or mangle them, so every non-AWS endpoint asks for
checksums only where an operation requires them, and the gateway's own upload checksums
(``--upload-checksums``) default to crc32c on AWS only.

Write options (``--sse``, ``--storage-class``, ``--requester-pays``,
``--expected-bucket-owner``, ``--user-project``) are checked here against what each
provider carries: a combination it cannot honour fails at startup with one line, rather
than being sent and silently ignored.
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal
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
# Storage classes S3 takes on PutObject (botocore's model, less the ones no bucket of a
# general-purpose endpoint accepts: OUTPOSTS, SNOW, EXPRESS_ONEZONE, FSX_*, AWS_BACKUP_*).
S3_STORAGE_CLASSES = (
    "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
    "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR",
)
R2_STORAGE_CLASSES = ("STANDARD", "STANDARD_IA")  # R2's Infrequent Access
_ACCOUNT = re.compile(r"^\d{12}$")
Checksum = Literal["crc32c", "sha256"]


@dataclass(frozen=True, slots=True)
class Preset:
    """The effective connection parameters of one store."""

    endpoint_url: str | None  # None: AWS, resolved by botocore from the region
    region: str | None  # None: from the AWS chain (env, profile), else botocore's default
    config: dict[str, Any]  # keyword arguments for botocore's Config / AioConfig
    # The provider is known to enforce ``If-None-Match: *`` on PutObject. When False the
    # store does a HEAD before the conditional PUT (see S3Store.put).
    conditional_writes: bool
    # Parameters of every request that makes an object: SSE, KMS key, storage class.
    write_params: dict[str, str] = field(default_factory=dict)
    # Headers every request carries (signed): requester pays, expected owner, GCS project.
    headers: dict[str, str] = field(default_factory=dict)
    upload_checksum: Checksum | None = None  # what the gateway computes and sends
    # A multipart crc32c is one CRC of the whole object (ChecksumType FULL_OBJECT, AWS),
    # not a checksum of the parts' checksums: it can then be served as a Repr-Digest.
    full_object_crc: bool = False
    # HEAD asks for the stored checksums (ChecksumMode=ENABLED).
    read_checksums: bool = False
    # Upload bodies are signed by their SHA-256 (x-amz-content-sha256), not UNSIGNED-PAYLOAD.
    sign_payload: bool = False

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
    write_params = _write_params(source, settings)
    headers = _owner_headers(source, settings)

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

    aws = endpoint is None
    choice = settings.upload_checksums or ("crc32c" if aws else "off")
    checksum: Checksum | None = None if choice == "off" else choice
    # Bodies go as UNSIGNED-PAYLOAD, as Mountpoint (the CRT) sends them, over http and
    # https alike: their SHA-256 costs a core about 1 s per GiB, TLS and the checksums
    # guard them. Signed when asked, or when a sha256 checksum is computed anyway.
    sign_payload = settings.sign_payload or checksum == "sha256"
    s3: dict[str, Any] = {"payload_signing_enabled": sign_payload}
    if settings.force_path_style:
        s3["addressing_style"] = "path"
    config: dict[str, Any] = {
        "max_pool_connections": settings.max_connections,
        "retries": {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        "s3": s3,
    }
    if settings.no_sign_request:
        config["signature_version"] = UNSIGNED
    if not aws or checksum is None:  # anything but AWS itself, or checksums turned off
        config["request_checksum_calculation"] = "when_required"
        config["response_checksum_validation"] = "when_required"
    return Preset(
        endpoint, region, config, conditional_writes,
        write_params=write_params,
        headers=headers,
        upload_checksum=checksum,
        full_object_crc=aws and checksum == "crc32c",
        read_checksums=aws or checksum is not None,
        sign_payload=sign_payload,
    )


def _write_params(source: Source, settings: StoreSettings) -> dict[str, str]:
    """SSE, KMS key and storage class as PutObject/CreateMultipartUpload/CopyObject take
    them; SettingsError for what the provider cannot honour."""
    scheme, sse, key = source.scheme, settings.sse, settings.sse_kms_key_id
    params: dict[str, str] = {}
    if key is not None and sse not in ("aws:kms", "aws:kms:dsse"):
        raise SettingsError(
            "--sse-kms-key-id needs --sse aws:kms or aws:kms:dsse"
            + (f" (not {sse})" if sse else "")
        )
    if sse is not None:
        if scheme == "r2":
            raise SettingsError(f"{source}: R2 encrypts every object itself and takes no --sse")
        if scheme == "gs":
            raise SettingsError(
                f"{source}: GCS encrypts every object itself; its XML API takes no --sse "
                "(set a default KMS key on the bucket instead)"
            )
        params["ServerSideEncryption"] = sse
        if key is not None:
            params["SSEKMSKeyId"] = key
    if settings.storage_class is not None:
        wanted = settings.storage_class.strip().upper()
        if scheme == "gs":
            raise SettingsError(
                f"{source}: --storage-class is not carried to GCS (its XML API names classes "
                "its own way): set the bucket's default storage class instead"
            )
        known = R2_STORAGE_CLASSES if scheme == "r2" else S3_STORAGE_CLASSES
        if wanted not in known:
            raise SettingsError(
                f"--storage-class {settings.storage_class!r} is not one of "
                f"{', '.join(known)}" + (" (R2's classes)" if scheme == "r2" else "")
            )
        params["StorageClass"] = wanted
    return params


def _owner_headers(source: Source, settings: StoreSettings) -> dict[str, str]:
    """The headers of every request for --requester-pays, --expected-bucket-owner and
    --user-project; SettingsError where the provider has no such thing."""
    scheme, owner, project = source.scheme, settings.expected_bucket_owner, settings.user_project
    headers: dict[str, str] = {}
    if project is not None and scheme != "gs":
        raise SettingsError("--user-project is for gs:// sources (GCS requester pays)")
    if settings.requester_pays:
        if scheme == "r2":
            raise SettingsError(f"{source}: R2 has no requester-pays buckets: remove "
                                "--requester-pays")
        if scheme == "gs" and project is None:
            raise SettingsError(
                f"{source}: --requester-pays on GCS needs --user-project PROJECT, the "
                "Google Cloud project billed (sent as x-goog-user-project)"
            )
        if scheme == "s3":
            headers["x-amz-request-payer"] = "requester"
    if project is not None:
        headers["x-goog-user-project"] = project
    if owner is not None:
        if scheme != "s3":
            name = "R2" if scheme == "r2" else "GCS"
            raise SettingsError(
                f"{source}: {name} does not check a bucket owner "
                "(x-amz-expected-bucket-owner): remove --expected-bucket-owner"
            )
        if not _ACCOUNT.match(owner):
            raise SettingsError(
                f"--expected-bucket-owner {owner!r} must be a 12-digit AWS account id"
            )
        headers["x-amz-expected-bucket-owner"] = owner
    return headers


def _sign_with(headers: dict[str, str]) -> Any:
    """A ``before-sign`` handler adding ``headers`` to every request, so that they are
    signed with it (botocore lacks a parameter for some, e.g. HeadBucket's payer)."""
    owner = headers.get("x-amz-expected-bucket-owner")

    def add(request: Any, **_: Any) -> None:
        for name, value in headers.items():
            request.headers[name] = value
        if owner is not None and "x-amz-copy-source" in request.headers:
            # The source of a copy is this same bucket: check its owner too.
            request.headers["x-amz-source-expected-bucket-owner"] = owner

    return add


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
    if preset.headers:
        client.meta.events.register("before-sign.s3", _sign_with(preset.headers))
    return client, stack

"""Real S3-compatible servers for tests: moto (in a thread) and s3rver (a Node process).

Both bind 127.0.0.1 on a free port and are stopped by the fixture that started them.
Credentials are fake and come from the standard AWS chain, exactly as in production:

* moto accepts any credentials; the environment variables set by ``isolate_aws_env``
  (``testing`` / ``testing``) are used.
* s3rver only knows the access key ``S3RVER`` (it does not verify v4 signatures), so it
  is reached through the profile ``s3rver`` of a throw-away shared-credentials file
  (``AWS_SHARED_CREDENTIALS_FILE``). An explicit profile makes botocore skip the env
  credentials. Use ``s3rver_settings(endpoint)`` for an in-process store, or pass
  ``--profile s3rver`` (and keep the environment) to a gateway subprocess.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config

from bench.servers import start_s3rver
from gateway.settings import StoreSettings

REGION = "us-east-1"
S3RVER_PROFILE = "s3rver"
S3RVER_ACCESS_KEY = "S3RVER"

# Variables that could point tests at a real account or a real endpoint.
_UNSAFE_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)


def isolate_aws_env() -> Path:
    """Point the AWS credential chain of this process (and its children) at fake keys.

    Called once when ``tests/conftest.py`` is imported, before any client exists, so it
    is a plain process-wide setting rather than a monkeypatch: moto and every store
    created by a test see the same values. Real credentials of the developer are never
    used: the keys are overwritten, not defaulted. Returns the folder holding the fake
    ``credentials`` and ``config`` files.
    """
    folder = Path(tempfile.mkdtemp(prefix="bucketdav-aws-"))
    (folder / "credentials").write_text(
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n\n"
        f"[{S3RVER_PROFILE}]\naws_access_key_id = {S3RVER_ACCESS_KEY}\n"
        "aws_secret_access_key = S3RVER\n",
        "utf-8",
    )
    (folder / "config").write_text(
        f"[default]\nregion = {REGION}\n\n[profile {S3RVER_PROFILE}]\nregion = {REGION}\n",
        "utf-8",
    )
    for name in _UNSAFE_ENV:
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_SHARED_CREDENTIALS_FILE": str(folder / "credentials"),
            "AWS_CONFIG_FILE": str(folder / "config"),
            "AWS_EC2_METADATA_DISABLED": "true",  # never probe instance metadata
        }
    )
    return folder


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---- moto --------------------------------------------------------------------------------


@contextlib.contextmanager
def run_moto() -> Iterator[str]:
    """moto's S3 in a thread on a free port; yields the endpoint URL."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO on a handler of its own; keep test output readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def moto_settings(endpoint: str, **changes: Any) -> StoreSettings:
    """Store settings for a moto endpoint (credentials from the env variables)."""
    return StoreSettings(endpoint_url=endpoint, region=REGION, force_path_style=True, **changes)


# ---- s3rver ------------------------------------------------------------------------------


@contextlib.contextmanager
def run_s3rver(directory: Path) -> Iterator[str]:
    """The s3rver npm server on a free port, storing under ``directory``; yields its URL.

    Started by the benchmark's launcher (one for both), which retries when another process
    takes the port before s3rver binds it; its log is kept beside ``directory``.
    """
    service = start_s3rver(directory, directory.with_name(directory.name + "-logs"))
    try:
        yield service.url
    finally:
        service.stop()


def s3rver_settings(endpoint: str, **changes: Any) -> StoreSettings:
    """Store settings for an s3rver endpoint: the ``s3rver`` profile supplies its key."""
    return StoreSettings(
        endpoint_url=endpoint,
        region=REGION,
        profile=S3RVER_PROFILE,
        force_path_style=True,
        **changes,
    )


# ---- buckets -----------------------------------------------------------------------------


@functools.cache
def client(endpoint: str, profile: str | None = None) -> Any:
    """A plain synchronous boto3 S3 client for arranging test data (one per endpoint)."""
    session = boto3.session.Session(profile_name=profile, region_name=REGION)
    return session.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def create_bucket(endpoint: str, profile: str | None = None, prefix: str = "test") -> str:
    """Create a new, uniquely named bucket and return its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:16]}"
    client(endpoint, profile).create_bucket(Bucket=name)
    return name

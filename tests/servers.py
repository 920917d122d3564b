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

import atexit
import contextlib
import functools
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
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
    ``credentials`` and ``config`` files, removed when the process exits.
    """
    folder = Path(tempfile.mkdtemp(prefix="bucketdav-aws-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
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


# ---- redis ------------------------------------------------------------------------------


class RedisServer:
    """A real ``redis-server`` on 127.0.0.1 and a free port, persistence off, its log in
    ``directory``. ``stop()`` then ``start()`` restarts it on the same port (an outage)."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory = directory
        self.args = args  # more redis-server options, e.g. "--requirepass", "secret"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        for _ in range(5 if not self.port else 1):  # another process may take a free port
            port = self.port or free_port()
            with open(self.directory / "redis.log", "ab") as log:
                self.process = subprocess.Popen(
                    ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", str(self.directory), *self.args],
                    stdout=log, stderr=subprocess.STDOUT,
                )
            if self._answers(port):
                self.port = port
                return
            self.stop()
        raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")

    def _answers(self, port: int) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.process and self.process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith((b"+PONG", b"-NOAUTH")):  # up, password or not
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@contextlib.contextmanager
def run_redis(directory: Path, *args: str) -> Iterator[RedisServer]:
    """A started ``RedisServer`` (see there), stopped at the end."""
    server = RedisServer(directory, *args)
    server.start()
    try:
        yield server
    finally:
        server.stop()


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

"""The settings objects: typed, frozen, built once at startup."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from gateway.settings.options import MiB, SettingsError

Scheme = Literal["s3", "gs", "r2", "file"]
Anonymous = Literal["off", "read-only", "read-write"]
LogFormat = Literal["text", "json"]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a share's objects live: a bucket and key prefix, or a local folder."""

    scheme: Scheme
    bucket: str  # for file: the absolute folder path
    prefix: str = ""  # "" or ends with "/"

    def __str__(self) -> str:
        if self.scheme == "file":
            return self.bucket
        return f"{self.scheme}://{self.bucket}/{self.prefix}"


def parse_source(text: str | None) -> Source:
    """``s3://bucket/prefix``, ``gs://``, ``r2://``, or a local directory path."""
    if not text:
        return Source("file", str(Path("data").resolve()))
    parts = urlsplit(text)
    if parts.scheme in ("s3", "gs", "r2"):
        bucket = parts.netloc
        if not bucket:
            raise SettingsError(f"source {text!r} names no bucket")
        prefix = parts.path.strip("/")
        if prefix:
            comps = prefix.split("/")
            if any(c in ("", ".", "..") for c in comps):
                raise SettingsError(f"source {text!r} has an invalid prefix")
            prefix += "/"
        return Source(parts.scheme, bucket, prefix)  # type: ignore[arg-type]
    if parts.scheme == "file":
        return Source("file", str(Path(parts.path).resolve()))
    if "://" in text:
        raise SettingsError(f"source {text!r}: unknown scheme (use s3://, gs://, r2:// or a path)")
    return Source("file", str(Path(text).resolve()))


@dataclass(frozen=True, slots=True)
class StoreSettings:
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    force_path_style: bool = False
    no_sign_request: bool = False
    account_id: str | None = None
    max_connections: int = 64


@dataclass(frozen=True, slots=True)
class Policy:
    """What a share allows. Defaults mirror Mountpoint for Amazon S3."""

    read_only: bool = False
    allow_overwrite: bool = False
    allow_delete: bool = False
    allow_rename: bool = False
    store_client_noise: bool = False


@dataclass(frozen=True, slots=True)
class EngineSettings:
    memory_target: int = 512  # MiB
    part_size: int = 8  # MiB
    read_part_size: int = 8
    write_part_size: int = 8
    metadata_ttl: float = 5.0

    @property
    def memory_target_bytes(self) -> int:
        return self.memory_target * MiB


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    shutdown_grace: float = 10.0
    max_ranges: int = 64
    public_host: str | None = None
    max_url_bytes: int = 8190
    log_level: str = "info"
    tls_cert: str | None = None
    tls_key: str | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """What one client may ask of the server; every refusal is a short 4xx/503."""

    max_header_bytes: int = 8190
    max_headers: int = 100
    max_xml_bytes: int = MiB
    max_xml_depth: int = 32
    max_client_connections: int = 1000
    keepalive_timeout: float = 75.0
    client_timeout: float = 60.0
    max_uploads: int = 64
    max_upload_size: int | None = None


@dataclass(frozen=True, slots=True)
class OpsSettings:
    admin: bool = True
    admin_host: str = "127.0.0.1"
    admin_port: int = 9180
    log_format: LogFormat = "text"
    access_log: bool = True


@dataclass(frozen=True, slots=True)
class Grant:
    """Access to one share (``"*"``: every share) for one user."""

    share: str  # a share's name: its mount without slashes ("photos", "" for "/"), or "*"
    read_only: bool = False
    jail: str = ""  # "" or a key prefix ending in "/": the user sees the share rooted there


ALL_SHARES = (Grant("*"),)


@dataclass(frozen=True, slots=True)
class UserSettings:
    name: str
    password_hash: str | None = None  # bcrypt; None: the htpasswd file holds it
    grants: tuple[Grant, ...] = ALL_SHARES


@dataclass(frozen=True, slots=True)
class AuthSettings:
    users: tuple[UserSettings, ...] = ()
    htpasswd: str | None = None
    anonymous: Anonymous = "off"
    allow_insecure_auth: bool = False
    realm: str = "bucketdav"

    @property
    def passwords(self) -> bool:
        """True when clients log in with a password (HTTP Basic)."""
        return bool(self.users or self.htpasswd)

    @property
    def enabled(self) -> bool:
        """Without users and without an anonymous mode, access is not checked at all."""
        return self.passwords or self.anonymous != "off"


@dataclass(frozen=True, slots=True)
class ShareSettings:
    mount: str  # URL path the share is served at: "/" or "/name/"
    source: Source
    store: StoreSettings = field(default_factory=StoreSettings)
    policy: Policy = field(default_factory=Policy)

    @property
    def name(self) -> str:
        """The mount without its slashes: what ``[[user]]`` tables call the share."""
        return self.mount.strip("/")


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings
    engine: EngineSettings
    shares: tuple[ShareSettings, ...]
    limits: LimitSettings = field(default_factory=LimitSettings)
    ops: OpsSettings = field(default_factory=OpsSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)

def build(cls: type[Any], values: Mapping[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names and v is not None})

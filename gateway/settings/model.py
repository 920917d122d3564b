"""The settings objects: typed, frozen, built once at startup.

A field declared with ``option()`` is also a command-line option, an environment variable
and a TOML key: its default, help and metavar are written here once, and ``options.py``
derives the option table from these classes. Each class is one ``--help`` section
(``options.SECTIONS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from gateway.settings.fields import KiB, MiB, SettingsError, Size, Texts, Workers, option
from gateway.settings.times import Instant

Scheme = Literal["s3", "gs", "r2", "file"]
Anonymous = Literal["off", "read-only", "read-write"]
LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
SseMode = Literal["AES256", "aws:kms", "aws:kms:dsse"]
UploadChecksums = Literal["crc32c", "sha256", "off"]


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
    endpoint_url: str | None = field(default=None, metadata=option(
        "S3 endpoint URL (MinIO, Ceph, s3rver, ...)", metavar="URL"))
    region: str | None = field(default=None, metadata=option("store region"))
    profile: str | None = field(default=None, metadata=option("AWS profile for credentials"))
    force_path_style: bool = field(default=False, metadata=option(
        "address the bucket in the path, not the host"))
    no_sign_request: bool = field(default=False, metadata=option(
        "send unsigned requests (public buckets)"))
    account_id: str | None = field(default=None, metadata=option(
        "Cloudflare account id, for r2:// sources"))
    max_connections: int = field(default=64, metadata=option(
        "most concurrent connections to the store"))
    # How writes are made, as the bucket's owner wants them (Mountpoint's names).
    sse: SseMode | None = field(default=None, metadata=option(
        "server-side encryption of new objects: AES256, aws:kms or aws:kms:dsse; "
        "default: the bucket's own", metavar="MODE"))
    sse_kms_key_id: str | None = field(default=None, metadata=option(
        "KMS key (id or ARN) for --sse aws:kms or aws:kms:dsse; default: the bucket's "
        "or the account's key", metavar="KEY"))
    storage_class: str | None = field(default=None, metadata=option(
        "storage class of new objects (STANDARD, STANDARD_IA, INTELLIGENT_TIERING, ...); "
        "default: the bucket's", metavar="CLASS"))
    requester_pays: bool = field(default=False, metadata=option(
        "ask every request to be billed to the gateway's account (a requester-pays "
        "bucket); gs:// needs --user-project, r2:// has none"))
    expected_bucket_owner: str | None = field(default=None, metadata=option(
        "AWS account id that must own the bucket: every request carries it and fails "
        "(403) if another account owns it", metavar="ACCOUNT"))
    user_project: str | None = field(default=None, metadata=option(
        "Google Cloud project billed for --requester-pays on gs:// (x-goog-user-project)",
        metavar="PROJECT"))
    upload_checksums: UploadChecksums | None = field(default=None, metadata=option(
        "checksum the gateway computes over each upload and sends, so that the store "
        "verifies what arrived: crc32c, sha256 or off (default: crc32c on AWS, off on "
        "other stores)", metavar="ALGORITHM", computed=True))
    sign_payload: bool = field(default=False, metadata=option(
        "sign each upload body's SHA-256 instead of sending UNSIGNED-PAYLOAD (the "
        "default, Mountpoint's way): about 1 s of CPU per GiB uploaded; for a plain-http "
        "store on a network you do not trust (on with --upload-checksums sha256)"))


@dataclass(frozen=True, slots=True)
class Policy:
    """What a share allows. Defaults mirror Mountpoint for Amazon S3."""

    read_only: bool = field(default=False, metadata=option("refuse every write"))
    allow_overwrite: bool = field(default=False, metadata=option(
        "allow replacing existing objects"))
    allow_delete: bool = field(default=False, metadata=option(
        "allow deleting objects and collections"))
    allow_rename: bool = field(default=False, metadata=option(
        "allow MOVE of objects with data (copy + delete)"))
    store_client_noise: bool = field(default=False, metadata=option(
        "store macOS ._* / .DS_Store and Windows desktop.ini / Thumbs.db in the bucket"))
    # Dangerous: any writer's page then runs as the gateway with its reader's credentials.
    trusted_html: bool = field(default=False, metadata=option(
        "let browsers run scripts in served HTML/SVG (drops the objects' sandbox policy); "
        "only for shares whose every writer is trusted"))
    # Key filters (gateway.fs.filters): a hidden key does not exist for any client.
    include: Texts | None = field(default=None, metadata=option(
        "globs of the keys served, after the share's prefix, comma-separated (** spans "
        "directories, * and ? stay within one name; a directory covers what is below it); "
        "default: every key", metavar="GLOBS"))
    exclude: Texts | None = field(default=None, metadata=option(
        "globs of keys hidden from every client, as --include; default: none",
        metavar="GLOBS"))
    filter: str | None = field(default=None, metadata=option(
        "regular expression a key (after the share's prefix) must contain (re.search; "
        "anchor with ^ and $) to be served; default: none", metavar="REGEX"))
    # Versions (gateway.storage.asof): the share as it was then, read-only.
    as_of: Instant | None = field(default=None, metadata=option(
        "serve the share as it was at this RFC 3339 time (e.g. 2026-11-30T08:00:00Z), "
        "read-only, from the bucket's object versions (a versioned S3 bucket); "
        "default: the present", metavar="TIME"))
    quota: Size | None = field(default=None, metadata=option(
        "bytes the share may hold, e.g. 500G: PROPFIND reports RFC 4331 quota properties "
        "and an upload that would pass it is refused (507); default: no quota and no quota "
        "properties", metavar="SIZE"))


@dataclass(frozen=True, slots=True)
class EngineSettings:
    memory_target: int = field(default=512, metadata=option(
        "memory the process aims to stay under, in MiB: buffers get it less a reserve for the "
        "process itself (a quarter, at most 112 MiB); default: RAM/8", metavar="MiB",
        computed=True))
    part_size: int = field(default=8, metadata=option(
        "ranged GET and multipart part size in MiB", metavar="MiB"))
    read_part_size: int = field(default=8, metadata=option(
        "largest ranged GET of read-ahead in MiB (default: --part-size); a full "
        "window goes out as 12 or more GETs of at least a quarter of this", metavar="MiB",
        computed=True))
    write_part_size: int = field(default=8, metadata=option(
        "multipart upload part size in MiB (default: --part-size); doubled for a body "
        "announced at 64 parts or more when the memory budget holds 9 such parts", metavar="MiB",
        computed=True))
    metadata_ttl: float = field(default=5.0, metadata=option(
        "seconds object metadata and listings are cached", metavar="SECONDS"))
    cache: str | None = field(default=None, metadata=option(
        "directory for a disk cache of the blocks read, behind the memory cache; created "
        "0700, private to one process; default: no disk cache", metavar="DIR"))
    max_cache_size: Size | None = field(default=None, metadata=option(
        "most bytes --cache holds, e.g. 20G (least recently used blocks go first); "
        "default: all but 5 percent of its disk", metavar="SIZE"))
    # Not options: set for the workers of --workers N (gateway.ops.workers), each of which
    # caches in DIR/worker-i with its share of the size.
    cache_worker: int | None = None
    cache_workers: int = 1

    @property
    def memory_target_bytes(self) -> int:
        return self.memory_target * MiB


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = field(default="127.0.0.1", metadata=option(
        "address to listen on", metavar="ADDRESS"))
    port: int = field(default=8080, metadata=option(
        "port to listen on (0 picks a free one)", metavar="PORT"))
    workers: Workers = field(default=1, metadata=option(
        "server processes sharing the port, each with its share of --memory-target, or "
        "auto (one per CPU); more than 1 needs a shared --state", metavar="N"))
    shutdown_grace: float = field(default=10.0, metadata=option(
        "seconds in-flight requests get to finish on shutdown", metavar="SECONDS"))
    max_ranges: int = field(default=64, metadata=option(
        "most byte ranges served in one multipart/byteranges reply"))
    public_host: str | None = field(default=None, metadata=option(
        "host names clients use for this server, comma-separated, for a proxy that rewrites "
        "Host without X-Forwarded-Host (COPY/MOVE Destinations on other hosts are refused)",
        metavar="NAMES"))
    state: str = field(default="memory", metadata=option(
        "where processes share locks, dead properties, noise files, write guards and cache "
        "invalidation: memory (this process only), or redis://[user@]host:port/db or "
        "rediss://... (Redis 7 or Valkey); the password may come from "
        "BUCKETDAV_STATE_PASSWORD or BUCKETDAV_STATE_PASSWORD_FILE", metavar="URL"))
    # How the server listens, so they are here; --help lists them under security.
    tls_cert: str | None = field(default=None, metadata=option(
        "TLS certificate chain (PEM): serve https (with --tls-key)", metavar="FILE",
        group="security"))
    tls_key: str | None = field(default=None, metadata=option(
        "TLS private key (PEM)", metavar="FILE", group="security"))

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """What one client may ask of the server; every refusal is a short 4xx/503."""

    max_url_bytes: int = field(default=8190, metadata=option(
        "longest request line accepted (longer: 400)"))
    max_header_bytes: int = field(default=8190, metadata=option(
        "longest header line accepted (longer: 400)"))
    max_headers: int = field(default=100, metadata=option(
        "most header lines in one request (more: 400)"))
    max_xml_bytes: Size = field(default=MiB, metadata=option(
        "largest XML request body: PROPFIND, PROPPATCH, LOCK (larger: 413)", metavar="SIZE"))
    max_xml_depth: int = field(default=32, metadata=option(
        "deepest element nesting in an XML request body"))
    max_client_connections: int = field(default=1000, metadata=option(
        "most open client connections (more: 503 and closed)"))
    # Per client as well as in total, so that one client cannot hold every slot.
    max_connections_per_address: int = field(default=64, metadata=option(
        "most open connections from one client address, an IPv6 /64 counting as one "
        "(more: 429 and closed); 0: no per-address limit; --trusted-proxy addresses are "
        "exempt"))
    keepalive_timeout: float = field(default=75.0, metadata=option(
        "seconds an idle connection is kept open between requests (the request "
        "head itself has --header-timeout)",
        metavar="SECONDS"))
    header_timeout: float = field(default=20.0, metadata=option(
        "seconds a client gets to send a complete request head (a TLS handshake "
        "included), from connecting or from the head's first byte (later: 408 and closed)",
        metavar="SECONDS"))
    client_timeout: float = field(default=60.0, metadata=option(
        "seconds a client may send nothing while its request body is awaited",
        metavar="SECONDS"))
    min_upload_rate: Size = field(default=1024, metadata=option(
        "slowest a request body may arrive, in bytes per second averaged over each "
        "--upload-rate-grace window (slower: 408, nothing written); 0: no minimum",
        metavar="SIZE"))
    upload_rate_grace: float = field(default=20.0, metadata=option(
        "seconds a request body gets before --min-upload-rate is checked, and the window "
        "it is averaged over", metavar="SECONDS"))
    max_uploads: int = field(default=64, metadata=option(
        "most uploads (PUT) in progress at once (more: 503)"))
    max_uploads_per_client: int = field(default=16, metadata=option(
        "most uploads in progress for one user, anonymous clients counted per address "
        "(more: 429); 0: no per-client limit"))
    max_upload_size: Size | None = field(default=None, metadata=option(
        "largest upload, e.g. 5G (larger: 413); default: no limit", metavar="SIZE"))
    # Locks live in memory and show in every PROPFIND of what they cover: bound them.
    max_lock_owner: Size = field(default=4 * KiB, metadata=option(
        "largest DAV:owner element of a LOCK body (larger: 400)", metavar="SIZE"))
    max_locks_per_resource: int = field(default=8, metadata=option(
        "most locks covering one resource, its own and those inherited from depth-infinity "
        "locks above it; only shared locks can add up (more: 507)"))
    max_locks_per_user: int = field(default=1000, metadata=option(
        "most locks one user holds at once, anonymous clients counting as one user "
        "(more: 507)"))
    max_lock_timeout: int = field(default=3600, metadata=option(
        "longest lock timeout granted; Infinite and longer requests get this",
        metavar="SECONDS"))


@dataclass(frozen=True, slots=True)
class OpsSettings:
    admin: bool = field(default=True, metadata=option(
        "serve /livez, /readyz and /metrics on the admin port"))
    admin_host: str = field(default="127.0.0.1", metadata=option(
        "address of the admin port", metavar="ADDRESS"))
    admin_port: int = field(default=9180, metadata=option(
        "admin port (0 picks a free one)", metavar="PORT"))
    log_level: LogLevel = field(default="info", metadata=option("log level", metavar="LEVEL"))
    log_format: LogFormat = field(default="text", metadata=option(
        "log line format", metavar="FORMAT"))
    access_log: bool = field(default=True, metadata=option("log one line per request"))


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
    users: tuple[UserSettings, ...] = ()  # [[user]] tables (tables.py)
    htpasswd: str | None = field(default=None, metadata=option(
        "htpasswd file of users (bcrypt entries); re-read when it changes", metavar="FILE"))
    anonymous: Anonymous = field(default="off", metadata=option(
        "access without a password when users are configured", metavar="MODE"))
    allow_insecure_auth: bool = field(default=False, metadata=option(
        "allow passwords over plain http on a non-loopback address (they travel in clear "
        "text)"))
    trusted_proxy: str | None = field(default=None, metadata=option(
        "addresses or CIDR blocks of proxies whose X-Forwarded-For / Forwarded name the "
        "client (comma-separated); the login throttle and the access log use that client",
        metavar="ADDRESSES"))
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

"""The option table: every setting declared once, with its flag, env variable and TOML key.

Precedence when merging: flags > environment > config file > defaults.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

ENV_PREFIX = "BUCKETDAV_"
KiB = 1024
MiB = 1024 * KiB


class SettingsError(ValueError):
    """A setting is malformed; the message names the setting and what is wrong."""


class ByteSize(int):
    """A byte count written plainly or with a binary suffix: ``1048576``, ``512K``, ``10GiB``."""

    _UNITS: ClassVar[dict[str, int]] = {"": 1, "k": KiB, "m": MiB, "g": KiB * MiB, "t": MiB * MiB}
    _FORM: ClassVar[re.Pattern[str]] = re.compile(
        r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE
    )

    def __new__(cls, value: object) -> ByteSize:
        if isinstance(value, int) and not isinstance(value, bool):
            return super().__new__(cls, value)
        match = cls._FORM.match(str(value))
        if match is None:
            raise ValueError(f"not a size: {value!r}")
        number, unit = match.groups()
        return super().__new__(cls, int(float(number) * cls._UNITS[unit.lower()]))


@dataclass(frozen=True, slots=True)
class Option:
    """One setting. Each settings dataclass takes the options whose names are its fields;
    ``group`` only says where ``--help`` lists it."""

    name: str  # python name; flag is --name-with-dashes, env BUCKETDAV_NAME, TOML key name
    kind: type
    default: Any
    help: str
    group: str = "server"  # help section: server, security, limits, operations, store, ...
    metavar: str | None = None
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _default_memory_target() -> int:
    """An eighth of physical memory, between 256 MiB and 2 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 512
    return max(256, min(2048, total // MiB // 8))


OPTIONS: tuple[Option, ...] = (
    # server
    Option("host", str, "127.0.0.1", "address to listen on", metavar="ADDRESS"),
    Option("port", int, 8080, "port to listen on (0 picks a free one)", metavar="PORT"),
    Option("shutdown_grace", float, 10.0, "seconds in-flight requests get to finish on shutdown",
           metavar="SECONDS"),
    Option("max_ranges", int, 64, "most byte ranges served in one multipart/byteranges reply"),
    Option("public_host", str, None,
           "host names clients use for this server, comma-separated, for a proxy that rewrites "
           "Host without X-Forwarded-Host (COPY/MOVE Destinations on other hosts are refused)",
           metavar="NAMES"),
    # security
    Option("tls_cert", str, None, "TLS certificate chain (PEM): serve https (with --tls-key)",
           "security", "FILE"),
    Option("tls_key", str, None, "TLS private key (PEM)", "security", "FILE"),
    Option("htpasswd", str, None,
           "htpasswd file of users (bcrypt entries); re-read when it changes", "security", "FILE"),
    Option("anonymous", str, "off", "access without a password when users are configured",
           "security", "MODE", ("off", "read-only", "read-write")),
    Option("allow_insecure_auth", bool, False,
           "allow passwords over plain http on a non-loopback address (they travel in clear "
           "text)", "security"),
    # limits
    Option("max_url_bytes", int, 8190, "longest request line accepted (longer: 400)", "limits"),
    Option("max_header_bytes", int, 8190, "longest header line accepted (longer: 400)",
           "limits"),
    Option("max_headers", int, 100, "most header lines in one request (more: 400)", "limits"),
    Option("max_xml_bytes", ByteSize, MiB,
           "largest XML request body: PROPFIND, PROPPATCH, LOCK (larger: 413)", "limits", "SIZE"),
    Option("max_xml_depth", int, 32, "deepest element nesting in an XML request body",
           "limits"),
    Option("max_client_connections", int, 1000,
           "most open client connections (more: 503 and closed)", "limits"),
    Option("keepalive_timeout", float, 75.0,
           "seconds a connection may wait idle or for a complete request head", "limits",
           "SECONDS"),
    Option("client_timeout", float, 60.0,
           "seconds a client may send nothing while its request body is awaited", "limits",
           "SECONDS"),
    Option("max_uploads", int, 64, "most uploads (PUT) in progress at once (more: 503)",
           "limits"),
    Option("max_upload_size", ByteSize, None,
           "largest upload, e.g. 5G (larger: 413); default: no limit", "limits", "SIZE"),
    # operations
    Option("admin", bool, True, "serve /livez, /readyz and /metrics on the admin port",
           "operations"),
    Option("admin_host", str, "127.0.0.1", "address of the admin port", "operations", "ADDRESS"),
    Option("admin_port", int, 9180, "admin port (0 picks a free one)", "operations", "PORT"),
    Option("log_level", str, "info", "log level", "operations", "LEVEL",
           ("debug", "info", "warning", "error")),
    Option("log_format", str, "text", "log line format", "operations", "FORMAT",
           ("text", "json")),
    Option("access_log", bool, True, "log one line per request", "operations"),
    # store
    Option("endpoint_url", str, None, "S3 endpoint URL (MinIO, Ceph, s3rver, ...)", "store", "URL"),
    Option("region", str, None, "store region", "store"),
    Option("profile", str, None, "AWS profile for credentials", "store"),
    Option("force_path_style", bool, False, "address the bucket in the path, not the host",
           "store"),
    Option("no_sign_request", bool, False, "send unsigned requests (public buckets)", "store"),
    Option("account_id", str, None, "Cloudflare account id, for r2:// sources", "store"),
    Option("max_connections", int, 64, "most concurrent connections to the store", "store"),
    # policy (the semantics of the share)
    Option("read_only", bool, False, "refuse every write", "policy"),
    Option("allow_overwrite", bool, False, "allow replacing existing objects", "policy"),
    Option("allow_delete", bool, False, "allow deleting objects and collections", "policy"),
    Option("allow_rename", bool, False, "allow MOVE of objects with data (copy + delete)",
           "policy"),
    Option(
        "store_client_noise",
        bool,
        False,
        "store macOS ._* / .DS_Store and Windows desktop.ini / Thumbs.db in the bucket",
        "policy",
    ),
    # engine
    Option("memory_target", int, None, "process-wide buffer budget in MiB (default: RAM/8)",
           "engine", "MiB"),
    Option("part_size", int, 8, "ranged GET and multipart part size in MiB", "engine", "MiB"),
    Option("read_part_size", int, None, "ranged GET size in MiB (default: --part-size)",
           "engine", "MiB"),
    Option("write_part_size", int, None, "multipart upload part size in MiB (default: --part-size)",
           "engine", "MiB"),
    Option("metadata_ttl", float, 5.0, "seconds object metadata and listings are cached",
           "engine", "SECONDS"),
)
OPTIONS_BY_NAME = {o.name: o for o in OPTIONS}
PER_SHARE = tuple(o.name for o in OPTIONS if o.group in ("store", "policy"))

def coerce(option: Option, value: Any, origin: str) -> Any:
    """Turn a raw value (string from env, TOML value, parsed flag) into the option's type."""
    if value is None:
        return None
    kind = option.kind
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{origin}: {option.name} must be true or false, not {value!r}")
    try:
        result = kind(value)
    except (TypeError, ValueError):
        what = "a size such as 512M or 5G" if kind is ByteSize else kind.__name__
        raise SettingsError(f"{origin}: {option.name} must be {what}, not {value!r}") from None
    if kind in (int, float, ByteSize) and result < 0:
        raise SettingsError(f"{origin}: {option.name} must not be negative")
    if option.choices is not None and result not in option.choices:
        raise SettingsError(
            f"{origin}: {option.name} must be one of {', '.join(option.choices)}, not {value!r}"
        )
    return result


def read_config_file(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"config file {path}: {e}") from None


TABLES = ("source", "share", "user")  # config keys that are not options


def merge_values(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """Resolve each option by precedence: flags > env > config file > default."""
    unknown = sorted(k for k in config if k not in OPTIONS_BY_NAME and k not in TABLES)
    if unknown:
        raise SettingsError(f"config file: unknown setting(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for option in OPTIONS:
        if flags.get(option.name) is not None:
            values[option.name] = coerce(option, flags[option.name], option.flag)
        elif option.env in env:
            values[option.name] = coerce(option, env[option.env], option.env)
        elif option.name in config:
            values[option.name] = coerce(option, config[option.name], "config file")
        else:
            values[option.name] = option.default
    return values


def explicit_names(flags: Mapping[str, Any], env: Mapping[str, str]) -> frozenset[str]:
    """Options set by a flag or an environment variable: they win over ``[[share]]`` keys."""
    return frozenset(
        o.name for o in OPTIONS if flags.get(o.name) is not None or o.env in env
    )

"""Typed, frozen settings: the one place that reads config files and environment variables.

Every option is declared once, as a field of a settings class (``model.py``, with its
default, help and metavar); ``OPTIONS`` (``options.py``) is derived from those fields, and
the command line, the ``BUCKETDAV_*`` environment variables and the TOML config file from
that table. Precedence: flags > environment > config file > defaults. The file may also hold
``[[share]]`` and ``[[user]]`` tables (``tables.py``); ``config/*.toml`` are documented
examples.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway.settings.fields import ByteSize, KiB, MiB, SettingsError, Size
from gateway.settings.model import (
    ALL_SHARES,
    Anonymous,
    AuthSettings,
    EngineSettings,
    Grant,
    LimitSettings,
    LogFormat,
    LogLevel,
    OpsSettings,
    Policy,
    Scheme,
    ServerSettings,
    Settings,
    ShareSettings,
    Source,
    StoreSettings,
    UserSettings,
    build,
    parse_source,
)
from gateway.settings.options import (
    ENV_PREFIX,
    OPTIONS,
    OPTIONS_BY_NAME,
    Option,
    _default_memory_target,
    explicit_names,
    merge_values,
    read_config_file,
)
from gateway.settings.tables import build_auth, build_shares, parse_jail, parse_mount

__all__ = [
    "ALL_SHARES",
    "ENV_PREFIX",
    "OPTIONS",
    "OPTIONS_BY_NAME",
    "Anonymous",
    "AuthSettings",
    "ByteSize",
    "EngineSettings",
    "Grant",
    "KiB",
    "LimitSettings",
    "LogFormat",
    "LogLevel",
    "MiB",
    "OpsSettings",
    "Option",
    "Policy",
    "Scheme",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "ShareSettings",
    "Size",
    "Source",
    "StoreSettings",
    "UserSettings",
    "build_settings",
    "explicit_names",
    "is_loopback",
    "load_settings",
    "merge_values",
    "parse_jail",
    "parse_mount",
    "parse_source",
    "read_config_file",
    "trusted_networks",
]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def trusted_networks(spec: str | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network,
                                                 ...]:
    """``--trusted-proxy``: ``10.0.0.0/8, 192.0.2.7, ::1`` as networks; a bad entry is named."""
    networks = []
    for item in (spec or "").split(","):
        text = item.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise SettingsError(
                f"--trusted-proxy: {text!r} is not an IP address or a CIDR block"
            ) from None
    return tuple(networks)


def _check_server(server: ServerSettings, auth: AuthSettings) -> None:
    trusted_networks(auth.trusted_proxy)
    if server.max_ranges < 1:
        raise SettingsError("--max-ranges must be at least 1")
    if (server.tls_cert is None) != (server.tls_key is None):
        raise SettingsError("--tls-cert and --tls-key go together: give both or neither")
    for path in (server.tls_cert, server.tls_key, auth.htpasswd):
        if path is not None and not Path(path).is_file():
            raise SettingsError(f"{path} is not a readable file")
    insecure = auth.passwords and not server.tls and not is_loopback(server.host)
    if insecure and not auth.allow_insecure_auth:
        raise SettingsError(
            f"refusing to take passwords over plain http on {server.host}: they would "
            "travel in clear text (and Windows refuses Basic auth without https). "
            "Serve https with --tls-cert/--tls-key, put a TLS proxy in front and pass "
            "--allow-insecure-auth, or listen on 127.0.0.1"
        )


def _check_locks(limits: LimitSettings) -> None:
    for flag, value in (("--max-lock-owner", limits.max_lock_owner),
                        ("--max-locks-per-resource", limits.max_locks_per_resource),
                        ("--max-locks-per-user", limits.max_locks_per_user),
                        ("--max-lock-timeout", limits.max_lock_timeout)):
        if value < 1:
            raise SettingsError(f"{flag} must be at least 1")


def _check_clients(limits: LimitSettings) -> None:
    for flag, count in (("--max-connections-per-address", limits.max_connections_per_address),
                        ("--max-uploads-per-client", limits.max_uploads_per_client),
                        ("--min-upload-rate", limits.min_upload_rate)):
        if count < 0:
            raise SettingsError(f"{flag} must be 0 (no limit) or more")
    for flag, seconds in (("--header-timeout", limits.header_timeout),
                          ("--upload-rate-grace", limits.upload_rate_grace)):
        if not seconds > 0:
            raise SettingsError(f"{flag} must be more than 0 seconds")


def build_settings(
    values: Mapping[str, Any],
    source: str | None,
    config: Mapping[str, Any] | None = None,
    explicit: frozenset[str] = frozenset(),
) -> Settings:
    config = config or {}
    engine = build(EngineSettings, values)
    if values.get("memory_target") is None:
        engine = replace(engine, memory_target=_default_memory_target())
    engine = replace(
        engine,
        read_part_size=values.get("read_part_size") or engine.part_size,
        write_part_size=values.get("write_part_size") or engine.part_size,
    )
    if engine.part_size < 1 or engine.read_part_size < 1:
        raise SettingsError("--part-size must be at least 1 MiB")
    if engine.write_part_size < 5:
        raise SettingsError("--write-part-size must be at least 5 MiB (the S3 minimum part size)")
    if engine.cache:
        engine = replace(engine, cache=os.path.abspath(engine.cache))
    elif engine.max_cache_size is not None:
        raise SettingsError("--max-cache-size needs --cache DIR")
    server = build(ServerSettings, values)
    limits = build(LimitSettings, values)
    if limits.max_uploads < 1 or limits.max_client_connections < 1:
        raise SettingsError("--max-uploads and --max-client-connections must be at least 1")
    _check_locks(limits)
    _check_clients(limits)
    shares = build_shares(source, config.get("share"), values, explicit)
    auth = build_auth(values, config.get("user"), [s.name for s in shares])
    _check_server(server, auth)
    return Settings(
        server=server,
        engine=engine,
        shares=shares,
        limits=limits,
        ops=build(OpsSettings, values),
        auth=auth,
    )


def load_settings(
    flags: Mapping[str, Any],
    source: str | None = None,
    config_path: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    env = os.environ if env is None else env
    config_path = config_path or env.get(ENV_PREFIX + "CONFIG")
    config = read_config_file(config_path) if config_path else {}
    source = source or env.get(ENV_PREFIX + "SOURCE") or config.get("source")
    values = merge_values(flags, env, config)
    return build_settings(values, source, config, explicit_names(flags, env))

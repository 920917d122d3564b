"""Pure parsing of the WebDAV request headers: Destination, Overwrite and Depth.

``Destination`` is decoded like a request target (a literal ``#`` is part of the name,
``?`` starts a query that is ignored) and must lie inside the same share. Its scheme is
ignored (a TLS-terminating proxy turns https into http); its host must be one this server
answers to: the request's ``Host`` or ``X-Forwarded-Host`` (proxies that rewrite Host
should forward the original there), so a COPY or MOVE can never aim at another server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiohttp import web

from gateway.errors import BadRequest, NotPermitted
from gateway.fs.paths import DavPath, decode_path, split_target, strip_mount

_ABSOLUTE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_FORWARDED_HOST = re.compile(r'host="?([^";,\s]+)', re.IGNORECASE)

PUBLIC_HOSTS = web.AppKey("public_hosts", frozenset)


class OutsideShare(NotPermitted):
    """COPY/MOVE to a place this share does not serve (another share, another server)."""


def _hostname(authority: str) -> str:
    """``user@Host:port`` -> ``host``; IPv6 brackets kept."""
    authority = authority.rpartition("@")[2].strip().lower()
    if authority.startswith("["):
        return authority.partition("]")[0] + "]"
    return authority.partition(":")[0]


def served_hosts(headers: Mapping[str, str], public: frozenset[str] = frozenset()) -> set[str]:
    """The host names this server answers to: the request's Host, the X-Forwarded-Host and
    Forwarded host a proxy passed on, and the configured public names."""
    names = [headers.get("Host", ""), *headers.get("X-Forwarded-Host", "").split(",")]
    names += _FORWARDED_HOST.findall(headers.get("Forwarded", ""))
    return {_hostname(n) for n in names if n.strip()} | {_hostname(n) for n in public}


def destination(
    headers: Mapping[str, str],
    mount_parts: tuple[str, ...],
    public_hosts: frozenset[str] = frozenset(),
) -> DavPath:
    """The ``Destination`` header as a path inside the share mounted at ``mount_parts``."""
    value = headers.get("Destination", "").strip()
    if not value:
        raise BadRequest("COPY and MOVE need a Destination header")
    match = _ABSOLUTE_URL.match(value)
    if match:
        rest = value[match.end() :]
        slash = rest.find("/")
        raw = rest[slash:] if slash >= 0 else "/"
        host: str | None = _hostname(rest[:slash] if slash >= 0 else rest)
    else:
        raw, host = value, None
    raw_path, _ = split_target(raw)
    if not raw_path.startswith("/"):
        raise BadRequest("Destination must be an absolute URL or an absolute path")
    path = decode_path(raw_path)
    hosts = served_hosts(headers, public_hosts)
    if host is not None and hosts and host not in hosts:
        raise OutsideShare(
            f"Destination {value} names another server ({host}); copies and moves stay "
            "on this server"
        )
    inner = strip_mount(path, mount_parts)
    if inner is None:
        mount = "/" + "".join(p + "/" for p in mount_parts)
        raise OutsideShare(
            f"Destination {value} is outside this share (mounted at {mount}); "
            "copies and moves stay inside one share"
        )
    return inner


def overwrite(headers: Mapping[str, str]) -> bool:
    """``Overwrite: T`` (the default) or ``F``."""
    value = headers.get("Overwrite", "T").strip().upper()
    if value not in ("T", "F"):
        raise BadRequest(f"Overwrite must be T or F, not {value!r}")
    return value == "T"


def parse_depth(headers: Mapping[str, str], method: str, allowed: tuple[str, ...]) -> str:
    """The Depth header, lower-cased, restricted to what ``method`` allows. A missing header
    means infinity (RFC 4918 sections 9.1, 9.8.3, 9.9.2, 9.10.3)."""
    raw = headers.get("Depth")
    if raw is None:
        return "infinity"
    value = raw.strip().lower()
    if value not in allowed:
        choices = " or ".join(allowed)
        raise BadRequest(f"{method} Depth must be {choices}, not {raw!r}")
    return value

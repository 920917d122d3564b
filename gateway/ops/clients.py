"""Who a client is, as the per-client limits count them, and the replies that refuse a
connection before aiohttp sees it."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from gateway.auth import USER
from gateway.auth.proxies import TrustedProxies, client_address


def address_key(host: str | None) -> str:
    """The client address limits count by: an IPv4 address (also when IPv4-mapped), or
    an IPv6 /64, since one host usually holds a whole /64."""
    if not host:
        return "?"
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_of(request: web.BaseRequest, proxies: TrustedProxies) -> str | None:
    """Whose uploads a request counts among: its user, or its address when anonymous (the
    peer, or the client a ``--trusted-proxy`` names). None while credentials are sent but
    not yet checked (the ``Expect`` handler runs before them)."""
    user = request.get(USER)
    if user is not None and not user.anonymous:
        return f"user {user.name}"
    if user is None and "Authorization" in request.headers:
        return None
    return f"address {address_key(client_address(request, proxies))}"


def canned_reply(status: str, message: str, retry_after: int | None = None) -> bytes:
    """A whole short reply, for a connection refused before aiohttp sees it."""
    body = message.encode() + b"\n"
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        + (f"Retry-After: {retry_after}\r\n" if retry_after is not None else "")
        + "Connection: close\r\n\r\n"
    ).encode() + body

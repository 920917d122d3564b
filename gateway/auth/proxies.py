"""Which address a request comes from, when proxies stand in front.

Behind a proxy or a Kubernetes Service every connection comes from the proxy, so the
failed-login throttle and the access log would see one client. A proxy says who its client
was in ``X-Forwarded-For`` (or ``Forwarded: for=``), but any client can send those headers
too: they are read only when the connection comes from an address listed with
``--trusted-proxy``. The chain is then walked from the right (the hop nearest to us),
skipping trusted proxies: the first address not trusted is the client. Entries further
left were written by that client and are never believed.

``X-Forwarded-For`` is read when present, else ``Forwarded``: a proxy that only writes
``Forwarded`` must drop an ``X-Forwarded-For`` its client sent.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from functools import lru_cache

from aiohttp import web

from gateway.settings import trusted_networks

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# The for= parameters of a Forwarded header (RFC 7239), in order, quoted or not.
_FORWARDED_FOR = re.compile(r'(?i)(?:^|[;,\s])for\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)')

# The address a request comes from, once worked out (the throttle and the access log
# both need it).
CLIENT = web.RequestKey("bucketdav.client", str)


# Per text, not per request: a connection's peer is parsed once, not for every request
# (ipaddress's parsing was a visible part of a 4 KiB GET's CPU). Bounded: header entries
# come from clients.
@lru_cache(maxsize=1024)
def _address(text: str) -> Address | None:
    """An address from a header entry or a peer name: ``192.0.2.1``, ``192.0.2.1:80``,
    ``[2001:db8::1]:80``, ``2001:db8::1``; None for ``unknown``, ``_hidden`` and junk."""
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack listener's view of an IPv4 peer
    return address


@lru_cache(maxsize=1024)
def _peer_text(peer: str) -> str:
    """A peer's address as the log and the throttle name it (IPv4-mapped ones as IPv4)."""
    address = _address(peer)
    return str(address) if address is not None else peer


class TrustedProxies:
    """The configured proxies, and the client address each request resolves to."""

    def __init__(self, networks: tuple[Network, ...] = ()) -> None:
        self.networks = networks

    @classmethod
    def parse(cls, spec: str | None) -> TrustedProxies:
        return cls(trusted_networks(spec))

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def trusts_peer(self, peer: str | None) -> bool:
        """True if a connection's peer address is one of the proxies."""
        address = _address(peer) if peer else None
        return address is not None and self.trusts(address)

    def client(self, peer: str | None, headers: Mapping[str, str]) -> str:
        """The client's address: the peer, or what trusted proxies say about their client."""
        if not peer:
            return "-"
        if not self.networks:
            return _peer_text(peer)
        address = _address(peer)
        if address is None or not self.trusts(address):
            return _peer_text(peer)
        for entry in reversed(self._chain(headers)):
            hop = _address(entry)
            if hop is None:
                break  # "unknown" or obfuscated: the nearest trusted proxy is all we know
            address = hop
            if not self.trusts(hop):
                break
        return str(address)

    @staticmethod
    def _chain(headers: Mapping[str, str]) -> list[str]:
        getall = getattr(headers, "getall", None)
        if "X-Forwarded-For" in headers:
            values = getall("X-Forwarded-For") if getall else [headers["X-Forwarded-For"]]
            return [e for v in values for e in v.split(",")]
        if "Forwarded" in headers:
            values = getall("Forwarded") if getall else [headers["Forwarded"]]
            return [m for v in values for m in _FORWARDED_FOR.findall(v)]
        return []


def client_address(request: web.BaseRequest, proxies: TrustedProxies) -> str:
    """The request's client address, worked out once per request."""
    known = request.get(CLIENT)
    if known is None:
        known = request[CLIENT] = proxies.client(request.remote, request.headers)
    return known

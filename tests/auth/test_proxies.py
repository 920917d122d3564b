"""The client address behind trusted proxies, as a pure part: which header entries are
believed, and which are the client's own words."""

from __future__ import annotations

import pytest

from gateway.auth.proxies import TrustedProxies
from gateway.settings import SettingsError

PROXIES = TrustedProxies.parse("10.0.0.0/8, 192.0.2.7, ::1")


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        pytest.param("198.51.100.1", {"X-Forwarded-For": "203.0.113.5"}, "198.51.100.1",
                     id="an untrusted peer's header is ignored"),
        pytest.param("10.1.2.3", {"X-Forwarded-For": "203.0.113.5"}, "203.0.113.5",
                     id="a trusted proxy names its client"),
        pytest.param("10.1.2.3", {"X-Forwarded-For": "6.6.6.6, 203.0.113.5"}, "203.0.113.5",
                     id="entries left of the first untrusted one are the client's words"),
        pytest.param("10.1.2.3", {"X-Forwarded-For": "203.0.113.5, 192.0.2.7"}, "203.0.113.5",
                     id="trusted hops are skipped"),
        pytest.param("10.1.2.3", {"X-Forwarded-For": "10.0.0.5"}, "10.0.0.5",
                     id="every hop trusted: the farthest"),
        pytest.param("10.1.2.3", {"X-Forwarded-For": "unknown"}, "10.1.2.3",
                     id="an unknown client: the proxy is all we know"),
        pytest.param("10.1.2.3", {"X-Forwarded-For": "203.0.113.5:4711"}, "203.0.113.5",
                     id="a port is dropped"),
        pytest.param("10.1.2.3", {"Forwarded": 'for="[2001:db8::1]:80";proto=https, for=10.2.2.2'},
                     "2001:db8::1", id="Forwarded, quoted IPv6 with a port"),
        pytest.param("10.1.2.3", {"Forwarded": "for=6.6.6.6", "X-Forwarded-For": "203.0.113.5"},
                     "203.0.113.5", id="X-Forwarded-For is read first"),
        pytest.param("::ffff:10.1.2.3", {"X-Forwarded-For": "203.0.113.5"}, "203.0.113.5",
                     id="an IPv4-mapped peer is its IPv4 address"),
        pytest.param("::1", {}, "::1", id="no header: the peer"),
        pytest.param(None, {}, "-", id="no peer"),
    ],
)
def test_client_address(peer: str | None, headers: dict[str, str], client: str) -> None:
    assert PROXIES.client(peer, headers) == client


def test_nothing_is_trusted_by_default() -> None:
    assert TrustedProxies.parse(None).client("10.1.2.3", {"X-Forwarded-For": "1.2.3.4"}) == (
        "10.1.2.3"
    )


def test_a_bad_entry_is_named() -> None:
    with pytest.raises(SettingsError, match=r"'proxy\.local'"):
        TrustedProxies.parse("10.0.0.0/8, proxy.local")


@pytest.mark.parametrize(("peer", "trusted"), [
    ("10.9.8.7", True), ("::ffff:10.9.8.7", True), ("::1", True), ("::1%lo", True),
    ("192.0.2.8", False), ("2001:db8::1", False), (None, False), ("", False), ("junk", False),
])
def test_which_peers_are_trusted_proxies(peer: str | None, trusted: bool) -> None:
    """What a connection's peer is (exempt from the per-address connection limit)."""
    assert PROXIES.trusts_peer(peer) is trusted

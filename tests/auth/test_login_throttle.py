"""The failed-login throttle of a real ``bucketdav serve``, attacked as issue 9 did: a
guesser at one address must not lock out the other users there, nor a user whose
credentials were already verified; many addresses guessing one account stop reaching
bcrypt; forwarding headers count only from ``--trusted-proxy`` addresses, and the access
log shows the client address that results."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.auth.throttle import PER_ACCOUNT_BURST, PER_CLIENT_BURST
from tests.auth.support import basic, bcrypt_hash
from tests.gatewayproc import Process, bucketdav, run_bucketdav

USERS = {"alice": "alice-pw", "bob": "bob-pw"}


def call(url: str, name: str, password: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url + "/f.txt", headers={**basic(name, password),
                                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.txt").write_text("content")
    config = tmp_path / "c.toml"
    config.write_text("".join(
        f'[[user]]\nname = "{name}"\npassword_hash = "{bcrypt_hash(pw)}"\n'
        for name, pw in USERS.items()
    ))
    return data, config


@pytest.fixture
def server(setup: tuple[Path, Path]) -> Iterator[Process]:
    data, config = setup
    with bucketdav(str(data), "--config", str(config), "--log-format", "json") as process:
        yield process


def access_clients(process: Process) -> list[str]:
    return [json.loads(line)["client"] for line in process.output().splitlines()
            if line.startswith("{") and '"bucketdav.access"' in line]


def test_a_guesser_at_an_address_does_not_lock_out_another_user_there(server: Process) -> None:
    statuses = [call(server.url, "alice", "guess") for _ in range(PER_CLIENT_BURST + 5)]
    assert statuses[:PER_CLIENT_BURST] == [401] * PER_CLIENT_BURST
    assert set(statuses[PER_CLIENT_BURST:]) == {429}  # the guesser is slowed down
    assert call(server.url, "bob", "bob-pw") == 200  # bob, at the same address, is not


def test_verified_credentials_pass_while_their_user_is_throttled(server: Process) -> None:
    assert call(server.url, "alice", "alice-pw") == 200  # verified (and remembered)
    for _ in range(PER_CLIENT_BURST + 5):
        call(server.url, "alice", "guess")
    assert call(server.url, "alice", "another-guess") == 429
    assert call(server.url, "alice", "alice-pw") == 200


def test_many_addresses_guessing_one_account_share_one_budget(setup: tuple[Path, Path]
                                                               ) -> None:
    """400 guesses from 100 addresses (behind a trusted proxy): past the per-account
    budget they are refused before bcrypt; alice still logs in where she did before."""
    data, config = setup
    with bucketdav(str(data), "--config", str(config), "--trusted-proxy", "127.0.0.1") as server:
        home = {"X-Forwarded-For": "198.51.100.1"}
        assert call(server.url, "alice", "alice-pw", home) == 200
        statuses = [
            call(server.url, "alice", f"guess-{i}", {"X-Forwarded-For": f"203.0.113.{i % 100}"})
            for i in range(400)
        ]
        assert statuses.count(401) <= PER_ACCOUNT_BURST + 2  # +2: refill during the run
        assert statuses.count(429) >= 400 - PER_ACCOUNT_BURST - 2
        assert call(server.url, "alice", "alice-pw", home) == 200
        # a name nobody has is throttled the same way: 429s do not tell names apart
        unknown = [call(server.url, "nobody", f"g{i}", {"X-Forwarded-For": f"192.0.2.{i}"})
                   for i in range(PER_ACCOUNT_BURST + 3)]
        assert unknown.count(429) >= 1


def test_forwarding_headers_are_ignored_from_an_untrusted_peer(server: Process) -> None:
    statuses = [call(server.url, "alice", "guess", {"X-Forwarded-For": f"203.0.113.{i}",
                                                     "Forwarded": f"for=198.51.100.{i}"})
                for i in range(PER_CLIENT_BURST + 1)]
    assert statuses[-1] == 429  # rotating the header did not make new clients
    assert set(access_clients(server)) == {"127.0.0.1"}


@pytest.mark.parametrize(
    ("headers", "client"),
    [
        ({"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"),
        # a client's own entry on the left is not believed: the proxy's view is
        ({"X-Forwarded-For": "10.9.9.9, 203.0.113.9"}, "203.0.113.9"),
        ({"X-Forwarded-For": "203.0.113.9, 127.0.0.1"}, "203.0.113.9"),  # two trusted hops
        ({"Forwarded": 'for="[2001:db8::7]:4711";proto=https'}, "2001:db8::7"),
        ({}, "127.0.0.1"),
    ],
)
def test_a_trusted_proxy_names_the_client_in_the_access_log(
    setup: tuple[Path, Path], headers: dict[str, str], client: str
) -> None:
    data, config = setup
    with bucketdav(str(data), "--config", str(config), "--log-format", "json",
                   "--trusted-proxy", "127.0.0.0/8, ::1") as server:
        assert call(server.url, "alice", "alice-pw", headers) == 200
        assert server.stop() == 0
    assert access_clients(server) == [client]


def test_a_malformed_trusted_proxy_is_refused_at_startup(setup: tuple[Path, Path]) -> None:
    data, _ = setup
    result = run_bucketdav(str(data), "--trusted-proxy", "10.0.0.0/8, proxy.local")
    assert result.returncode == 2
    assert "--trusted-proxy" in result.stderr and "proxy.local" in result.stderr

"""The access matrix over real apps: who gets 401, 403 or 429, what anonymous access
allows, and that a jailed user can neither see nor touch anything outside the jail, by
any spelling of the path or of a MOVE/COPY Destination."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession

from gateway.auth import ACCESS, Access
from gateway.auth.basic import Authenticator
from gateway.auth.throttle import FailureThrottle, LoginThrottle
from gateway.settings import AuthSettings, Grant, UserSettings
from tests.apps import MemoryApp, memory_app, raw_request, serving
from tests.auth.support import basic, bcrypt_hash

ALICE = basic("alice", "alice-pw")  # read-write everywhere
READER = basic("reader", "reader-pw")  # read-only everywhere
JAILED = basic("jailed", "jailed-pw")  # read-write in /home/, jailed to "jailed/"
WINDOWS_UA = "Microsoft-WebDAV-MiniRedir/10.0.19045"
CHALLENGE = 'Basic realm="bucketdav"'

USERS = (
    UserSettings("alice", bcrypt_hash("alice-pw")),
    UserSettings("reader", bcrypt_hash("reader-pw"), (Grant("*", read_only=True),)),
    UserSettings("jailed", bcrypt_hash("jailed-pw"), (Grant("home", jail="jailed/"),)),
)

# Every write method, with what it needs to be a well-formed request.
WRITES: list[tuple[str, str, dict[str, str]]] = [
    ("PUT", "/home/new.txt", {}),
    ("DELETE", "/home/top.txt", {}),
    ("MKCOL", "/home/dir/", {}),
    ("COPY", "/home/top.txt", {"Destination": "/home/copy.txt"}),
    ("MOVE", "/home/top.txt", {"Destination": "/home/moved.txt"}),
    ("PROPPATCH", "/home/top.txt", {}),
    ("LOCK", "/home/top.txt", {}),
    ("UNLOCK", "/home/top.txt", {"Lock-Token": "<urn:uuid:x>"}),
]


def app_with(anonymous: str = "off", mounts: tuple[str, ...] = ("/home/", "/docs/")) -> MemoryApp:
    built = memory_app(mounts, auth=AuthSettings(users=USERS, anonymous=anonymous))  # type: ignore[arg-type]
    home = built.stores.get("/home/")
    if home is not None:
        home.put_sync("jailed/mine.txt", b"mine")
        home.put_sync("other/secret.txt", b"secret")
        home.put_sync("top.txt", b"top")
    docs = built.stores.get("/docs/")
    if docs is not None:
        docs.put_sync("readme.txt", b"readme")
    return built


@pytest.fixture
async def site() -> AsyncIterator[tuple[str, MemoryApp]]:
    built = app_with()
    async with serving(built.app) as url:
        yield url, built


async def request(url: str, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str],
                                                                             bytes]:
    async with ClientSession() as session, session.request(method, url + path,
                                                            **kwargs) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def snapshot(built: MemoryApp) -> dict[str, dict[str, bytes]]:
    return {m: {k: v.data for k, v in s.objects.items()} for m, s in built.stores.items()}


class TestAuthentication:
    async def test_no_credentials_get_401_with_a_basic_challenge(
        self, site: tuple[str, MemoryApp]
    ) -> None:
        url, _ = site
        status, headers, body = await request(url, "GET", "/home/top.txt")
        assert status == 401
        assert headers["WWW-Authenticate"] == CHALLENGE
        assert body == b"authentication required\n"

    @pytest.mark.parametrize("method", ["OPTIONS", "PROPFIND"])
    async def test_windows_probe_at_the_root_gets_the_challenge(
        self, site: tuple[str, MemoryApp], method: str
    ) -> None:
        """DavClnt / the Mini-Redirector starts its WebDAV service on this 401."""
        url, _ = site
        status, headers, _ = await request(
            url, method, "/", headers={"User-Agent": WINDOWS_UA, "Depth": "0"}
        )
        assert status == 401
        assert headers["WWW-Authenticate"] == CHALLENGE

    @pytest.mark.parametrize(
        "creds",
        [basic("alice", "nope"), basic("nobody", "alice-pw")],
        ids=["wrong password", "unknown user"],
    )
    async def test_wrong_password_and_unknown_user_get_401(
        self, site: tuple[str, MemoryApp], creds: dict[str, str]
    ) -> None:
        url, _ = site
        status, headers, body = await request(url, "GET", "/home/top.txt", headers=creds)
        assert status == 401
        assert headers["WWW-Authenticate"] == CHALLENGE
        assert body == b"wrong user name or password\n"

    async def test_right_password_reads(self, site: tuple[str, MemoryApp]) -> None:
        url, _ = site
        status, _, body = await request(url, "GET", "/home/top.txt", headers=ALICE)
        assert (status, body) == (200, b"top")

    async def test_repeated_failures_for_a_user_from_one_address_are_slowed_down(self) -> None:
        built = app_with()
        built.app[ACCESS] = Access(Authenticator(
            AuthSettings(users=USERS),
            throttle=LoginThrottle(per_client=FailureThrottle(burst=3, refill=3600)),
        ))
        async with serving(built.app) as url:
            for _ in range(3):
                status, _, _ = await request(url, "GET", "/home/top.txt",
                                             headers=basic("alice", "guess"))
                assert status == 401
            status, headers, body = await request(url, "GET", "/home/top.txt", headers=ALICE)
            assert status == 429
            assert int(headers["Retry-After"]) > 0
            assert b"too many failed logins" in body


class TestRights:
    async def test_read_only_user_reads(self, site: tuple[str, MemoryApp]) -> None:
        url, _ = site
        assert (await request(url, "GET", "/home/top.txt", headers=READER))[0] == 200
        assert (await request(url, "PROPFIND", "/home/", headers={**READER, "Depth": "1"}
                              ))[0] == 207

    @pytest.mark.parametrize(
        ("method", "path", "extra"),
        [pytest.param(m, p, e, id=m) for m, p, e in WRITES],
    )
    async def test_every_write_of_a_read_only_user_is_403(
        self, site: tuple[str, MemoryApp], method: str, path: str, extra: dict[str, str]
    ) -> None:
        url, built = site
        before = snapshot(built)
        status, _, body = await request(url, method, path, headers={**READER, **extra},
                                        data=b"x" if method == "PUT" else None)
        assert status == 403, method
        assert b"reader may only read /home/" in body
        assert snapshot(built) == before

    async def test_read_write_user_writes(self, site: tuple[str, MemoryApp]) -> None:
        url, built = site
        status, _, _ = await request(url, "PUT", "/docs/new.txt", headers=ALICE, data=b"new")
        assert status == 201
        assert built.stores["/docs/"].objects["new.txt"].data == b"new"

    async def test_a_share_without_a_grant_is_403(self, site: tuple[str, MemoryApp]) -> None:
        url, _ = site
        status, _, body = await request(url, "GET", "/docs/readme.txt", headers=JAILED)
        assert status == 403
        assert body == b"jailed has no access to /docs/\n"

    async def test_the_root_lists_only_the_users_shares(self, site: tuple[str, MemoryApp]) -> None:
        url, _ = site
        _, _, body = await request(url, "GET", "/?format=json", headers=JAILED)
        assert b'"home"' in body and b'"docs"' not in body
        _, _, body = await request(url, "GET", "/?format=json", headers=ALICE)
        assert b'"home"' in body and b'"docs"' in body

    @pytest.mark.parametrize("method", ["PUT", "MKCOL", "LOCK"])
    async def test_writes_at_the_root_are_403(
        self, site: tuple[str, MemoryApp], method: str
    ) -> None:
        url, _ = site
        status, _, body = await request(url, method, "/stray.txt", headers=ALICE,
                                        data=b"x" if method == "PUT" else None)
        assert status == 403, method
        assert b"/ only lists the shares" in body


class TestAnonymous:
    async def test_configured_anonymous_access_is_read_only(self) -> None:
        built = app_with(anonymous="read-only")
        async with serving(built.app) as url:
            assert (await request(url, "GET", "/home/top.txt"))[0] == 200
            assert (await request(url, "OPTIONS", "/"))[0] == 200
            status, _, body = await request(url, "PUT", "/home/anon.txt", data=b"x")
            assert status == 403
            assert b"anonymous may only read" in body
            # credentials still work, and wrong ones are still refused
            assert (await request(url, "PUT", "/home/a.txt", headers=ALICE, data=b"x"))[0] == 201
            assert (await request(url, "GET", "/home/top.txt",
                                  headers=basic("alice", "bad")))[0] == 401
        assert "anon.txt" not in built.stores["/home/"].objects


class TestJail:
    async def test_the_jailed_user_sees_the_share_rooted_at_the_jail(
        self, site: tuple[str, MemoryApp]
    ) -> None:
        url, built = site
        status, _, body = await request(url, "GET", "/home/mine.txt", headers=JAILED)
        assert (status, body) == (200, b"mine")
        _, _, listing = await request(url, "GET", "/home/?format=json", headers=JAILED)
        assert b"mine.txt" in listing
        assert b"secret" not in listing and b"top.txt" not in listing and b"other" not in listing
        status, _, _ = await request(url, "PUT", "/home/new.txt", headers=JAILED, data=b"n")
        assert status == 201
        assert built.stores["/home/"].objects["jailed/new.txt"].data == b"n"

    @pytest.mark.parametrize(
        "target",
        [
            "/home/../home/other/secret.txt",
            "/home/%2e%2e/other/secret.txt",
            "/home/%2E%2E/other/secret.txt",
            "/home/..%2fother/secret.txt",
            "/home/%2e%2e%2fother%2fsecret.txt",
            "/home/.%2e/other/secret.txt",
            "/home/..\\other\\secret.txt",
            "/home/%5c..%5cother/secret.txt",
            "/home/%00/../other/secret.txt",
        ],
    )
    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    async def test_traversal_spellings_are_refused(
        self, site: tuple[str, MemoryApp], target: str, method: str
    ) -> None:
        url, built = site
        before = snapshot(built)
        reply = await raw_request(url, method, target, JAILED, b"x" if method == "PUT" else b"")
        assert reply.status in (400, 404), (method, target)
        assert b"secret" not in reply.body
        assert snapshot(built) == before

    async def test_a_double_encoded_dot_dot_is_just_a_name_inside_the_jail(
        self, site: tuple[str, MemoryApp]
    ) -> None:
        url, built = site
        reply = await raw_request(url, "PUT", "/home/%252e%252e/x.txt", JAILED, b"x")
        assert reply.status in (201, 409)
        assert all(k.startswith("jailed/") or k in ("other/secret.txt", "top.txt")
                   for k in built.stores["/home/"].objects)

    @pytest.mark.parametrize("method", ["COPY", "MOVE"])
    @pytest.mark.parametrize(
        "destination",
        [
            "/home/../home/other/stolen.txt",
            "/home/%2e%2e/other/stolen.txt",
            "/home/..%2fother%2fstolen.txt",
            "/docs/stolen.txt",
            "/stolen.txt",
            "http://elsewhere.example/home/%2e%2e/top.txt",
        ],
    )
    async def test_a_destination_outside_the_jail_is_refused_and_nothing_moves(
        self, site: tuple[str, MemoryApp], method: str, destination: str
    ) -> None:
        url, built = site
        before = snapshot(built)
        reply = await raw_request(url, method, "/home/mine.txt",
                                  {**JAILED, "Destination": destination, "Overwrite": "T"})
        assert reply.status in (400, 403), (method, destination, reply.status)
        assert snapshot(built) == before

    @pytest.mark.parametrize("method", ["COPY", "MOVE"])
    async def test_a_destination_that_names_the_share_lands_in_the_jail(
        self, site: tuple[str, MemoryApp], method: str
    ) -> None:
        """``/home/top.txt`` is the jailed user's own ``top.txt``, not the share's."""
        url, built = site
        reply = await raw_request(url, method, "/home/mine.txt",
                                  {**JAILED, "Destination": f"{url}/home/top.txt"})
        assert reply.status == 201, reply.body
        objects = built.stores["/home/"].objects
        assert objects["top.txt"].data == b"top"  # the share's own file is untouched
        assert objects["jailed/top.txt"].data == b"mine"


async def test_no_credentials_are_refused_before_100_continue(site: tuple[str, MemoryApp]) -> None:
    """A client announcing a large upload learns it needs a password before sending it."""
    url, built = site
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"PUT /home/big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n"
                 b"Expect: 100-continue\r\n\r\n")
    await writer.drain()
    first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    writer.close()
    assert first.startswith(b"HTTP/1.1 401 ")
    assert b'WWW-Authenticate: Basic realm="bucketdav"' in first
    assert "big.bin" not in built.stores["/home/"].objects


class TestLocksBelongToTheirUser:
    """lockdiscovery shows tokens to every reader: a token alone must not let another user
    write through a lock or release it."""

    LOCK = (
        '<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
        "<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
        "<D:owner>alice</D:owner></D:lockinfo>"
    )

    async def test_another_user_cannot_write_through_or_unlock_a_lock(self) -> None:
        users = (
            UserSettings("alice", bcrypt_hash("alice-pw")),
            UserSettings("bob", bcrypt_hash("bob-pw")),
        )
        built = memory_app(("/home/",), auth=AuthSettings(users=users))
        bob = basic("bob", "bob-pw")
        async with serving(built.app) as url:
            status, headers, _ = await request(url, "LOCK", "/home/doc.txt", data=self.LOCK,
                                               headers=ALICE)
            assert status == 201
            token = headers["Lock-Token"]
            status, _, _ = await request(url, "PUT", "/home/doc.txt", data=b"bob's",
                                         headers={**bob, "If": f"({token})"})
            assert status == 423
            status, _, body = await request(url, "UNLOCK", "/home/doc.txt",
                                            headers={**bob, "Lock-Token": token})
            assert status == 403 and b"another user" in body
            status, _, _ = await request(url, "PUT", "/home/doc.txt", data=b"alice's",
                                         headers={**ALICE, "If": f"({token})"})
            assert status == 204
            status, _, _ = await request(url, "UNLOCK", "/home/doc.txt",
                                         headers={**ALICE, "Lock-Token": token})
            assert status == 204
        assert built.stores["/home/"].objects["doc.txt"].data == b"alice's"

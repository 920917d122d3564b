"""Which host a COPY/MOVE Destination may name behind a proxy (SEMANTICS, COPY and MOVE):
the request's Host, a host the proxy passed on in X-Forwarded-Host or Forwarded, or a name
given with --public-host; any other host is 403 and nothing changes.

Every request here arrives as a proxy would forward it: its Host rewritten to the proxy's
upstream name, the client's Destination still naming the public host.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.settings import ServerSettings
from tests.apps import ALL_FLAGS, app_for
from tests.memorystore import MemoryStore

UPSTREAM = "gateway.internal:8080"  # the Host a rewriting proxy sends
PUBLIC = "http://dav.example.com/b"  # where the client asked the copy to go


def arranged() -> MemoryStore:
    store = MemoryStore()
    store.put_sync("a", b"data")
    return store


async def send(aiohttp_client: Any, store: MemoryStore, method: str, headers: dict[str, str],
               public_host: str | None = None) -> tuple[int, str]:
    app = app_for(store, policy=ALL_FLAGS, server=ServerSettings(public_host=public_host))
    client = await aiohttp_client(app)
    resp = await client.request(method, "/a", headers={"Host": UPSTREAM, **headers})
    return resp.status, await resp.text()


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
async def test_without_any_sign_of_the_public_host_the_destination_is_another_server(
    aiohttp_client: Any, method: str
) -> None:
    store = arranged()
    status, text = await send(aiohttp_client, store, method, {"Destination": PUBLIC})
    assert status == 403
    assert "names another server (dav.example.com)" in text
    assert set(store.objects) == {"a"}


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
@pytest.mark.parametrize("names", ["dav.example.com", "other.example, DAV.example.com:443"])
async def test_public_host_names_this_server(aiohttp_client: Any, method: str, names: str
                                             ) -> None:
    store = arranged()
    status, _ = await send(aiohttp_client, store, method, {"Destination": PUBLIC},
                           public_host=names)
    assert status == 201
    assert store.objects["b"].data == b"data"
    assert ("a" in store.objects) == (method == "COPY")


async def test_public_host_does_not_admit_other_hosts(aiohttp_client: Any) -> None:
    store = arranged()
    status, text = await send(aiohttp_client, store, "COPY",
                              {"Destination": "http://evil.example/b"},
                              public_host="dav.example.com")
    assert status == 403 and "names another server (evil.example)" in text
    assert set(store.objects) == {"a"}


@pytest.mark.parametrize(
    "forwarded",
    [
        "host=dav.example.com",
        'for=192.0.2.60;proto=https;host="dav.example.com"',
        "for=192.0.2.43, for=198.51.100.17;host=dav.example.com;proto=http",
        'Host="DAV.example.com:443"',
    ],
)
@pytest.mark.parametrize("method", ["COPY", "MOVE"])
async def test_the_forwarded_host_names_this_server(
    aiohttp_client: Any, method: str, forwarded: str
) -> None:
    store = arranged()
    status, _ = await send(aiohttp_client, store, method,
                           {"Destination": PUBLIC, "Forwarded": forwarded})
    assert status == 201
    assert store.objects["b"].data == b"data"
    assert ("a" in store.objects) == (method == "COPY")


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
async def test_the_x_forwarded_host_names_this_server(aiohttp_client: Any, method: str) -> None:
    store = arranged()
    status, _ = await send(aiohttp_client, store, method,
                           {"Destination": PUBLIC, "X-Forwarded-Host": "dav.example.com"})
    assert status == 201
    assert store.objects["b"].data == b"data"


async def test_a_forwarded_header_naming_another_host_admits_only_that_host(
    aiohttp_client: Any
) -> None:
    store = arranged()
    status, text = await send(aiohttp_client, store, "COPY",
                              {"Destination": PUBLIC, "Forwarded": "for=192.0.2.1;host=x.example"})
    assert status == 403 and "names another server (dav.example.com)" in text
    assert set(store.objects) == {"a"}

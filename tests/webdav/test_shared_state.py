"""Two gateway apps sharing one real ``redis-server`` behave as one server: each is a
``Gateway`` of its own with its own state-store client, as two processes or replicas are,
over the same bucket. A lock taken through one conflicts with a lock through the other, the
placeholder rule holds across them, dead properties set through one show through the other
and follow COPY, MOVE and DELETE made through it; and while Redis is down, what needs it is
503 naming the state store while reads go on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import make_app
from gateway.state import open_state
from gateway.webdav.lockservice import LOCKS
from tests.apps import ALL_FLAGS, gateway_for
from tests.memorystore import MemoryStore
from tests.servers import RedisServer, run_redis
from tests.webdav.davxml import D, lock_body, multistatus, propfind_body

COLOR = "{urn:x}color"
Replica = Callable[[], Awaitable[TestClient]]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with run_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.put_sync("doc.txt", b"data")
    store.put_sync("dir/x", b"x")
    return store


def replicas(aiohttp_client: AiohttpClient, store: MemoryStore, url: str) -> Replica:
    """Each call: one more gateway over ``store`` with its own client of the Redis at
    ``url`` (one fresh namespace per test)."""
    namespace = f"test-{uuid.uuid4().hex}"

    async def replica() -> TestClient:
        gateway = gateway_for(store, policy=ALL_FLAGS)
        gateway.state = await open_state(url, namespace=namespace, timeout=0.5)
        return await aiohttp_client(make_app(gateway))

    return replica


@pytest.fixture
async def two(aiohttp_client: AiohttpClient, store: MemoryStore, redis_server: RedisServer
              ) -> AsyncIterator[tuple[TestClient, TestClient]]:
    replica = replicas(aiohttp_client, store, redis_server.url)
    yield await replica(), await replica()


async def lock(client: TestClient, path: str, scope: str = "exclusive",
               **headers: str) -> tuple[int, str]:
    resp = await client.request("LOCK", path, data=lock_body(scope), headers=headers)
    return resp.status, resp.headers.get("Lock-Token", "")


async def color_of(client: TestClient, path: str) -> str | None:
    resp = await client.request("PROPFIND", path, data=propfind_body(COLOR),
                                headers={"Depth": "0"})
    assert resp.status == 207
    (answer,) = multistatus(await resp.read()).values()
    found = answer.ok().get(COLOR)
    return None if found is None else found.text


def set_color(value: str) -> str:
    return ('<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
            f'<x:color xmlns:x="urn:x">{value}</x:color></D:prop></D:set></D:propertyupdate>')


async def test_a_lock_through_one_conflicts_with_a_lock_through_the_other(
    two: tuple[TestClient, TestClient]
) -> None:
    a, b = two
    status, token = await lock(a, "/doc.txt", Depth="0")
    assert status == 200
    assert (await lock(b, "/doc.txt", Depth="0"))[0] == 423
    assert (await lock(b, "/dir/", Depth="infinity"))[0] == 200  # elsewhere: free
    assert (await lock(a, "/dir/x", Depth="0"))[0] == 423  # covered by b's
    # b sees a's lock, checks writes against it, and lets its holder unlock through b
    resp = await b.request("PROPFIND", "/doc.txt", headers={"Depth": "0"})
    active = multistatus(await resp.read())["/doc.txt"].ok()[D + "lockdiscovery"]
    assert active.findtext(f"{D}activelock/{D}locktoken/{D}href") == token.strip("<>")
    assert (await b.put("/doc.txt", data=b"no")).status == 423
    assert (await b.put("/doc.txt", data=b"yes", headers={"If": f"({token})"})).status == 204
    assert (await b.request("UNLOCK", "/doc.txt", headers={"Lock-Token": token})).status == 204
    assert (await lock(b, "/doc.txt", Depth="0"))[0] == 200


async def test_shared_locks_and_their_cap_count_across_processes(
    two: tuple[TestClient, TestClient]
) -> None:
    a, b = two
    for i in range(8):  # the default --max-locks-per-resource, taken through both
        assert (await lock(a if i % 2 else b, "/doc.txt", "shared"))[0] == 200
    for client in (a, b):
        assert (await lock(client, "/doc.txt", "shared"))[0] == 507
        assert (await lock(client, "/doc.txt"))[0] == 423
    # The metric counts every process's locks (a scrape starts a fresh count).
    a.app[LOCKS].count(), b.app[LOCKS].count()
    await asyncio.sleep(0.2)
    assert a.app[LOCKS].count() == b.app[LOCKS].count() == 8


async def test_the_placeholder_rule_holds_across_processes(
    aiohttp_client: AiohttpClient, redis_server: RedisServer
) -> None:
    """In default mode, an object created under a LOCK through one process may be rewritten
    with the token through another, until UNLOCK."""
    store = MemoryStore()
    namespace = f"test-{uuid.uuid4().hex}"
    clients = []
    for _ in range(2):
        gateway = gateway_for(store)
        gateway.state = await open_state(redis_server.url, namespace=namespace)
        clients.append(await aiohttp_client(make_app(gateway)))
    a, b = clients
    status, token = await lock(a, "/new.txt", Depth="0")
    assert status == 201
    for body in (b"one", b"two"):
        put = await b.put("/new.txt", data=body, headers={"If": f"({token})"})
        assert put.status == 204
    assert (await a.request("UNLOCK", "/new.txt", headers={"Lock-Token": token})).status == 204
    assert (await b.put("/new.txt", data=b"three")).status == 403
    assert store.objects["new.txt"].data == b"two"


async def test_dead_properties_show_and_follow_through_the_other_process(
    two: tuple[TestClient, TestClient]
) -> None:
    a, b = two
    assert (await a.request("PROPPATCH", "/doc.txt", data=set_color("red"))).status == 207
    assert (await a.request("PROPPATCH", "/dir/", data=set_color("blue"))).status == 207
    assert await color_of(b, "/doc.txt") == "red"
    assert (await b.request("COPY", "/doc.txt", headers={"Destination": "/c.txt"})).status == 201
    assert await color_of(a, "/c.txt") == "red"
    assert (await b.request("MOVE", "/dir/", headers={"Destination": "/d/"})).status == 201
    assert await color_of(a, "/d/") == "blue"
    assert (await a.delete("/c.txt")).status == 204
    await b.put("/c.txt", data=b"new")
    assert await color_of(b, "/c.txt") is None


async def test_properties_survive_a_restart_of_the_gateway(
    aiohttp_client: AiohttpClient, store: MemoryStore, redis_server: RedisServer
) -> None:
    replica = replicas(aiohttp_client, store, redis_server.url)
    first = await replica()
    assert (await first.request("PROPPATCH", "/doc.txt", data=set_color("kept"))).status == 207
    await first.close()  # the app's cleanup closes its state store
    assert await color_of(await replica(), "/doc.txt") == "kept"


async def test_redis_down_is_a_503_naming_the_state_store_and_reads_go_on(
    aiohttp_client: AiohttpClient, store: MemoryStore, tmp_path: Path
) -> None:
    with run_redis(tmp_path) as server:
        replica = replicas(aiohttp_client, store, server.url)
        a = await replica()
        status, token = await lock(a, "/doc.txt", Depth="0")
        assert status == 200
        assert (await a.request("PROPPATCH", "/dir/", data=set_color("c"))).status == 207
        server.stop()
        for method, path, headers in (
            ("LOCK", "/dir/x", {}),
            ("UNLOCK", "/doc.txt", {"Lock-Token": token}),
            ("PUT", "/doc.txt", {"If": f"({token})"}),
            ("PROPPATCH", "/doc.txt", {}),
        ):
            body = lock_body() if method == "LOCK" else set_color("x") \
                if method == "PROPPATCH" else b"x"
            resp = await a.request(method, path, data=body, headers=headers)
            assert resp.status == 503, method
            assert "state store" in await resp.text(), method
        get = await a.get("/doc.txt")
        assert get.status == 200 and await get.read() == b"data"
        resp = await a.request("PROPFIND", "/", headers={"Depth": "1"})
        assert resp.status == 207
        assert set(multistatus(await resp.read())) == {"/", "/doc.txt", "/dir/"}
        server.start()  # back on its port: nothing was kept (persistence off), all works
        for _ in range(100):
            status, _ = await lock(a, "/doc.txt", Depth="0")
            if status != 503:
                break
            await asyncio.sleep(0.05)
        assert status == 200

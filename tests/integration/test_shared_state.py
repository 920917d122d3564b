"""Several gateways over one bucket and one real ``redis-server`` behave as one server
(DESIGN.md, "Shared state"): client noise written through one is read through another,
a write through one is seen at once through another despite a long metadata TTL, two
creators of one new name through two gateways give one 201 and one 412, and while Redis is
down reads and listings go on, what needs it is 503 naming the state store and /readyz is
not ready, until it comes back.

Each "process" is a ``Gateway`` of its own (its own engine, caches and state-store client),
built by the command's own wiring (``build_gateway``) and served by aiohttp; the controls
give each its own ``memory`` state, which shares nothing, and see the difference. The last
tests run a real ``bucketdav serve --workers 2``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import GATEWAY, build_gateway, make_app
from gateway.errors import Exists
from gateway.ops.admin import Readiness, make_admin_app
from gateway.ops.metrics import Metrics
from gateway.settings import EngineSettings, Policy
from gateway.state import MemoryState, StateStore, open_state
from gateway.storage.base import ObjectInfo
from tests.apps import settings_for
from tests.gatewayproc import bucketdav
from tests.integration.test_workers import ESCAPE, request
from tests.memorystore import MemoryStore
from tests.servers import RedisServer, run_redis
from tests.webdav.davxml import lock_body, multistatus

LONG_TTL = 3600.0  # seconds: nothing may become visible by expiring
POLICY = Policy(allow_delete=True)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with run_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


async def states(kind: str, url: str, count: int = 2) -> list[StateStore]:
    """``count`` clients of one shared Redis state (a fresh namespace), or ``count``
    separate memory states (the control: nothing shared)."""
    if kind == "memory":
        return [MemoryState() for _ in range(count)]
    namespace = f"test-{uuid.uuid4().hex}"
    return [await open_state(url, namespace=namespace, timeout=0.5) for _ in range(count)]


async def gateways(aiohttp_client: AiohttpClient, store: MemoryStore, kind: str, url: str,
                   ) -> tuple[TestClient, TestClient]:
    """Two gateways ("processes") over ``store``, each with its own state-store client."""
    clients = []
    for state in await states(kind, url):
        settings = settings_for(policy=POLICY, engine=EngineSettings(metadata_ttl=LONG_TTL))
        clients.append(await aiohttp_client(make_app(build_gateway(settings, [store], state))))
    return clients[0], clients[1]


async def names_in(client: TestClient, path: str) -> set[str]:
    resp = await client.request("PROPFIND", path, headers={"Depth": "1"})
    if resp.status == 404:
        return set()
    assert resp.status == 207
    return {href.rstrip("/").rsplit("/", 1)[-1] for href in multistatus(await resp.read())}


# ---- the client-noise area ---------------------------------------------------------------


async def test_noise_written_through_one_gateway_is_read_through_the_other(
    aiohttp_client: AiohttpClient, redis_server: RedisServer
) -> None:
    store = MemoryStore()
    one, two = await gateways(aiohttp_client, store, "redis", redis_server.url)
    assert (await one.put("/._photo.jpg", data=b"apple double")).status == 201
    got = await two.get("/._photo.jpg")
    assert got.status == 200 and await got.read() == b"apple double"
    found = await two.request("PROPFIND", "/._photo.jpg", headers={"Depth": "0"})
    assert found.status == 207
    (answer,) = multistatus(await found.read()).values()
    assert answer.ok()["{DAV:}getcontentlength"].text == str(len(b"apple double"))
    moved = await two.request("MOVE", "/._photo.jpg",
                              headers={"Destination": "/._picture.jpg"})
    assert moved.status == 201
    assert (await one.get("/._photo.jpg")).status == 404
    assert await (await one.get("/._picture.jpg")).read() == b"apple double"
    assert (await one.delete("/._picture.jpg")).status == 204
    assert (await two.get("/._picture.jpg")).status == 404
    assert store.objects == {}


# ---- cache invalidation: read-your-writes through any gateway ------------------------------


@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_a_write_through_one_gateway_is_seen_at_once_through_the_other(
    aiohttp_client: AiohttpClient, redis_server: RedisServer, kind: str
) -> None:
    store = MemoryStore()
    store.put_sync("dir/old.txt", b"old")
    one, two = await gateways(aiohttp_client, store, kind, redis_server.url)
    # The reader learns what is there now: a 404 (negative entry) and a listing page.
    assert (await two.get("/dir/new.txt")).status == 404
    assert await names_in(two, "/dir/") == {"dir", "old.txt"}

    assert (await one.put("/dir/new.txt", data=b"fresh")).status == 201
    got = await two.get("/dir/new.txt")
    listed = await names_in(two, "/dir/")
    if kind == "memory":  # the control: nothing tells the other gateway within the TTL
        assert got.status == 404 and "new.txt" not in listed
        return
    assert got.status == 200 and await got.read() == b"fresh"
    assert listed == {"dir", "old.txt", "new.txt"}

    assert (await one.delete("/dir/new.txt")).status == 204
    assert (await two.get("/dir/new.txt")).status == 404
    assert await names_in(two, "/dir/") == {"dir", "old.txt"}
    # A collection deleted through one (a batch: one event for the prefix).
    assert (await two.get("/dir/old.txt")).status == 200
    assert (await one.delete("/dir/")).status == 204
    assert (await two.get("/dir/old.txt")).status == 404
    assert await names_in(two, "/") == {""}


# ---- write guards: one creator of a new name across gateways ------------------------------


class RacyStore(MemoryStore):
    """A store that ignores If-None-Match (as s3rver does): it is asked only after a look,
    and a moment passes between the look and the write, as on a real network."""

    async def put(self, key: str, data: bytes, content_type: str | None = None,
                  if_none_match: bool = False, mtime: float | None = None) -> ObjectInfo:
        if if_none_match and key in self.objects:
            raise Exists(f"{key!r} exists")
        await asyncio.sleep(0.2)
        return await super().put(key, data, content_type, mtime=mtime)


@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_two_creators_of_one_name_through_two_gateways_give_one_201(
    aiohttp_client: AiohttpClient, redis_server: RedisServer, kind: str
) -> None:
    store = RacyStore()
    one, two = await gateways(aiohttp_client, store, kind, redis_server.url)
    answers = await asyncio.gather(one.put("/report.txt", data=b"mine"),
                                   two.put("/report.txt", data=b"theirs"))
    statuses = sorted(resp.status for resp in answers)
    if kind == "memory":  # the control: two processes' own guards do not see each other
        assert statuses == [201, 201]
        return
    assert statuses == [201, 412]
    winner = answers[[r.status for r in answers].index(201)]
    assert store.objects["report.txt"].data == (b"mine" if winner is answers[0] else b"theirs")


# ---- when Redis fails -----------------------------------------------------------------------


async def test_while_redis_is_down_reads_go_on_and_what_needs_it_is_503_until_it_is_back(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    store = MemoryStore()
    store.put_sync("doc.txt", b"data")
    store.put_sync("dir/x", b"x")
    with run_redis(tmp_path) as redis:
        one, two = await gateways(aiohttp_client, store, "redis", redis.url)
        admin = await aiohttp_client(make_admin_app(
            Readiness([("/", store)], one.app[GATEWAY].state), Metrics()))
        assert (await admin.get("/readyz")).status == 200
        assert (await one.put("/._kept", data=b"noise")).status == 201

        redis.stop()
        got = await one.get("/doc.txt")
        assert got.status == 200 and await got.read() == b"data"
        assert await names_in(one, "/dir/") == {"dir", "x"}
        assert await (await two.get("/dir/x")).read() == b"x"
        assert (await one.request("PROPFIND", "/doc.txt", headers={"Depth": "0"})
                ).status == 207
        for resp in (await one.put("/._new", data=b"noise"), await two.get("/._kept"),
                     await one.request("LOCK", "/doc.txt", data=lock_body()),
                     await admin.get("/readyz")):
            assert resp.status == 503
            assert "state store" in await resp.text()

        redis.start()  # the same port, empty (persistence off)

        async def ready() -> bool:
            return (await admin.get("/readyz")).status == 200

        for _ in range(300):
            if await ready():
                break
            await asyncio.sleep(0.1)
        assert await ready()
        assert (await one.put("/._new", data=b"noise again")).status == 201
        assert await (await two.get("/._new")).read() == b"noise again"
        assert (await two.put("/after.txt", data=b"back")).status == 201
        assert await (await one.get("/after.txt")).read() == b"back"


# ---- a real bucketdav serve --workers 2 --------------------------------------------------


@pytest.mark.parametrize("kind", ["redis", "memory"])
def test_two_workers_read_a_put_at_once_with_a_long_metadata_ttl(
    tmp_path: Path, redis_server: RedisServer, kind: str
) -> None:
    folder = tmp_path / "share"
    folder.mkdir()
    state = redis_server.url if kind == "redis" else "memory"
    with bucketdav(str(folder), "--workers", "2", "--state", state, "--metadata-ttl",
                   str(LONG_TTL), env=ESCAPE if kind == "memory" else None,
                   timeout=60) as server:
        url = server.url + "/new.txt"
        # Every worker learns that the name is free (a negative entry for an hour).
        assert {request("GET", url)[0] for _ in range(20)} == {404}
        assert request("PUT", url, b"fresh")[0] == 201
        seen = [request("GET", url) for _ in range(20)]
        if kind == "memory":  # the control: the worker that did not write still says 404
            assert 404 in {status for status, _ in seen}
            return
        assert seen == [(200, b"fresh")] * 20

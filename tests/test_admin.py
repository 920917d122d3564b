"""The admin port: /livez, /readyz (every store answers, cached, 503 while draining) and
/metrics whose values move as requests are served."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import GATEWAY, build_gateway, make_app
from gateway.errors import Unavailable
from gateway.ops import accesslog
from gateway.ops.admin import Readiness, make_admin_app
from gateway.ops.metrics import Metrics
from gateway.settings import EngineSettings, ShareSettings, Source, StoreSettings
from gateway.storage.base import GetResult, ObjectStore
from tests.apps import MemoryApp, memory_app, serving, settings_for
from tests.memorystore import MemoryStore
from tests.webdav.davxml import lock_body


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def admin_app(readiness: Readiness) -> web.Application:
    return make_admin_app(readiness, memory_app().app[GATEWAY].metrics)


class TestProbes:
    async def test_livez(self, aiohttp_client: Any) -> None:
        client = await aiohttp_client(admin_app(Readiness([])))
        resp = await client.get("/livez")
        assert resp.status == 200
        assert await resp.text() == "ok\n"

    async def test_readyz_when_every_store_answers(self, aiohttp_client: Any) -> None:
        readiness = Readiness([("/a/", MemoryStore()), ("/b/", MemoryStore())])
        client = await aiohttp_client(admin_app(readiness))
        resp = await client.get("/readyz")
        assert resp.status == 200
        assert await resp.text() == "ready\n"

    async def test_readyz_names_the_share_whose_store_fails(self, aiohttp_client: Any) -> None:
        broken = MemoryStore()
        broken.fail("check", Unavailable("connection refused"))
        client = await aiohttp_client(admin_app(Readiness([("/a/", MemoryStore()),
                                                           ("/b/", broken)])))
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert await resp.text() == "not ready: /b/: connection refused\n"

    async def test_readyz_is_cached_briefly(self, aiohttp_client: Any) -> None:
        store = MemoryStore()
        client = await aiohttp_client(admin_app(Readiness([("/", store)])))
        for _ in range(5):
            assert (await client.get("/readyz")).status == 200
        assert store.calls["check"] == 1

    async def test_readyz_is_503_while_shutting_down(self, aiohttp_client: Any) -> None:
        readiness = Readiness([("/", MemoryStore())])
        client = await aiohttp_client(admin_app(readiness))
        readiness.draining = True
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert "shutting down" in await resp.text()


@pytest.fixture
async def metered() -> AsyncIterator[tuple[str, str, MemoryApp]]:
    """(gateway URL, admin URL, app): both served, metrics from the gateway's registry."""
    built = memory_app(("/data/", "/more/"))
    built.stores["/data/"].put_sync("hello.txt", b"hello world")
    gateway = built.app[GATEWAY]
    readiness = Readiness([(s.mount, st) for s, st in zip(gateway.settings.shares,
                                                            gateway.stores, strict=True)])
    admin = make_admin_app(readiness, gateway.metrics)
    async with serving(built.app) as url:
        runner = web.AppRunner(admin)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            yield url, f"http://127.0.0.1:{runner.addresses[0][1]}", built
        finally:
            await runner.cleanup()


async def scrape(session: ClientSession, admin: str) -> str:
    async with session.get(admin + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        return await resp.text()


class TestMetrics:
    async def test_request_metrics_move_as_requests_are_served(
        self, metered: tuple[str, str, MemoryApp]
    ) -> None:
        url, admin, _ = metered
        async with ClientSession() as session:
            before = await scrape(session, admin)
            for _ in range(3):
                async with session.get(url + "/data/hello.txt") as resp:
                    assert await resp.read() == b"hello world"
            async with session.get(url + "/data/missing.txt") as resp:
                assert resp.status == 404
            async with session.put(url + "/data/up.txt", data=b"12345") as resp:
                assert resp.status == 201
            after = await scrape(session, admin)
        ok = "bucketdav_http_requests_total"
        assert value(after, ok, method="GET", status="200") - value(
            before, ok, method="GET", status="200") == 3
        assert value(after, ok, method="GET", status="404") == 1
        assert value(after, ok, method="PUT", status="201") == 1
        assert value(after, "bucketdav_http_request_duration_seconds_count", method="GET") >= 4
        assert value(after, "bucketdav_http_received_bytes_total") >= 5
        assert value(after, "bucketdav_http_sent_bytes_total") > value(
            before, "bucketdav_http_sent_bytes_total") + 3 * len(b"hello world")

    async def test_store_and_engine_numbers_are_read_at_scrape_time(
        self, metered: tuple[str, str, MemoryApp]
    ) -> None:
        url, admin, _ = metered
        async with ClientSession() as session:
            async with session.get(url + "/data/hello.txt") as resp:
                await resp.read()
            async with session.put(url + "/data/new.txt", data=b"x") as resp:
                assert resp.status == 201
            text = await scrape(session, admin)
        assert value(text, "bucketdav_store_requests_total", share="/data/", op="put") == 1
        assert value(text, "bucketdav_store_requests_total", share="/data/", op="get") + value(
            text, "bucketdav_store_requests_total", share="/data/", op="head") >= 1
        assert value(text, "bucketdav_store_requests_total", share="/more/", op="put") == 0
        assert value(text, "bucketdav_memory_budget_bytes") > 0
        assert ("bucketdav_engine_metadata_misses_total", ()) in samples(text)
        assert value(text, "bucketdav_uploads_in_flight") == 0

    async def test_store_errors_are_counted_by_operation(
        self, metered: tuple[str, str, MemoryApp]
    ) -> None:
        url, admin, built = metered
        built.stores["/data/"].fail("put", Unavailable("down"))
        async with ClientSession() as session:
            async with session.put(url + "/data/fails.txt", data=b"x") as resp:
                assert resp.status == 503
            text = await scrape(session, admin)
        assert value(text, "bucketdav_store_errors_total", share="/data/", op="put",
                     error="Unavailable") == 1

    async def test_locks_held(self, metered: tuple[str, str, MemoryApp]) -> None:
        url, admin, _ = metered
        async with ClientSession() as session:
            async with session.request("LOCK", url + "/data/hello.txt", data=lock_body(),
                                       headers={"Timeout": "Second-600"}) as resp:
                assert resp.status == 200
                token = resp.headers["Lock-Token"]
            assert value(await scrape(session, admin), "bucketdav_locks_held") == 1
            async with session.request("UNLOCK", url + "/data/hello.txt",
                                       headers={"Lock-Token": token}) as resp:
                assert resp.status == 204
            assert value(await scrape(session, admin), "bucketdav_locks_held") == 0

    async def test_each_app_has_its_own_registry(self) -> None:
        one, two = memory_app(), memory_app()
        assert one.app[GATEWAY].metrics.registry is not two.app[GATEWAY].metrics.registry


class TestInstrumentedStore:
    async def test_every_store_operation_is_counted_under_its_label(self) -> None:
        metrics = Metrics()
        inner = MemoryStore()
        store = metrics.instrument("/", inner)
        await store.check()
        await store.put("a", b"x")
        await store.head("a")
        await (await store.get("a")).aclose()
        await store.list_page("")
        upload = await store.create_upload("b")
        part = await store.upload_part("b", upload, 1, b"y")
        await store.complete_upload("b", upload, [part])
        await store.abort_upload("c", await store.create_upload("c"))
        await store.list_uploads("")
        await store.copy("a", "d")
        await store.delete("d")
        await store.delete_many(["a"])
        await store.close()
        assert metrics.stores[0].calls == Counter({
            "check": 1, "put": 1, "head": 1, "get": 1, "list": 1, "create_upload": 2,
            "upload_part": 1, "complete_upload": 1, "abort_upload": 1, "list_uploads": 1,
            "copy": 1, "delete": 1, "delete_many": 1,
        })
        assert inner.calls["put"] == 1 and sorted(inner.objects) == ["b"]

    def test_it_offers_the_protocol_and_nothing_else(self) -> None:
        store = Metrics().instrument("/", MemoryStore(name="m"))
        assert isinstance(store, ObjectStore)
        assert store.description == "memory://m"
        assert not hasattr(store, "objects")  # the wrapped store's extras stay hidden

    @pytest.mark.parametrize("limit", [1, 2])
    async def test_the_share_connection_limit_reaches_the_engine(self, limit: int) -> None:
        """--max-connections bounds the ranged GETs in flight (three quarters of it, at
        least one), passed to the engine as a setting, not read off the store."""
        store = SlowGets()
        store.put_sync("big.bin", bytes(16 << 20))
        share = ShareSettings("/", Source("s3", "bucket"), StoreSettings(max_connections=limit))
        settings = replace(settings_for(engine=EngineSettings(part_size=1)), shares=(share,))
        app = make_app(build_gateway(settings, [store]))
        async with (
            serving(app) as url,
            ClientSession() as session,
            session.get(url + "/big.bin") as resp,
        ):
            assert len(await resp.read()) == 16 << 20
        assert store.peak == max(1, limit - limit // 4)


class SlowGets(MemoryStore):
    """Ranged GETs that take a while, so read-ahead has several in flight; counts the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.peak = 0

    async def get(self, key: str, start: int | None = None, end: int | None = None,
                  if_match: str | None = None) -> GetResult:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(0.02)
            return await super().get(key, start, end, if_match)
        finally:
            self.active -= 1



class TestObserverWithoutAccessLines:
    """Below INFO the access line is never built, and the request is still counted."""

    def test_metrics_count_a_request_whose_line_is_not_written(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def no_line(fields: dict[str, Any]) -> str:
            raise AssertionError("a line was formatted for a logger that drops it")

        monkeypatch.setattr(accesslog, "logfmt", no_line)
        metrics = Metrics()
        logger = logging.getLogger("bucketdav.test-quiet-access")
        logger.setLevel(logging.WARNING)
        observer = accesslog.observer_class(metrics, True)(logger, "")
        request = make_mocked_request("GET", "/data/hello.txt")
        observer.log(request, web.Response(status=200, body=b"hello"), 0.01)
        text = generate_latest(metrics.registry).decode()
        assert value(text, "bucketdav_http_requests_total", method="GET", status="200") == 1
        assert value(text, "bucketdav_http_request_duration_seconds_count", method="GET") == 1

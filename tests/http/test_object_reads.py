"""Every read a GET opens is closed when its response is done, on every path: plain,
ranged, multipart, conditional, HEAD, a stale cached ETag retried, a store failing at once
or mid-body, and a client that goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.engine import OpenRead
from gateway.errors import Unavailable
from tests.apps import memory_app, share_of
from tests.memorystore import MemoryStore

DATA = bytes(range(256)) * 64  # 16 KiB


class Reads:
    """The reads the share's view opened, and which of them were closed."""

    def __init__(self) -> None:
        self.opened: list[OpenRead] = []
        self.closed: list[OpenRead] = []

    def all_closed(self) -> bool:
        return {id(r) for r in self.opened} == {id(r) for r in self.closed}


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[Reads]:
    seen = Reads()
    real_aclose = OpenRead.aclose

    async def aclose(self: OpenRead) -> None:
        seen.closed.append(self)
        await real_aclose(self)

    monkeypatch.setattr(OpenRead, "aclose", aclose)
    yield seen


@pytest.fixture
async def served(aiohttp_client: AiohttpClient, reads: Reads) -> tuple[TestClient, MemoryStore]:
    app = memory_app()
    store = app.stores["/"]
    store.put_sync("data.bin", DATA)
    store.put_sync("empty", b"")
    store.put_sync("big", DATA * 256)  # 4 MiB: several blocks
    view = share_of(app.app).view
    real_open = view.open

    async def open_(key: str, info: Any = None) -> OpenRead:
        read = await real_open(key, info)
        reads.opened.append(read)
        return read

    view.open = open_  # type: ignore[method-assign]
    return await aiohttp_client(app.app), store


@pytest.mark.parametrize(("method", "path", "headers", "status"), [
    ("GET", "/data.bin", {}, 200),
    ("GET", "/empty", {}, 200),
    ("GET", "/data.bin", {"Range": "bytes=10-99"}, 206),
    ("GET", "/data.bin", {"Range": "bytes=0-9,100-199,-5"}, 206),
    ("GET", "/data.bin", {"Range": "bytes=99999-"}, 416),
    ("GET", "/data.bin", {"If-None-Match": "*"}, 304),
    ("GET", "/data.bin", {"If-Match": '"other"'}, 412),
    ("GET", "/data.bin", {"If-Match": "*"}, 200),
    ("HEAD", "/data.bin", {"Range": "bytes=0-9"}, 206),
])
async def test_every_read_is_closed_when_the_response_is_done(
    served: tuple[TestClient, MemoryStore], reads: Reads, method: str, path: str,
    headers: dict[str, str], status: int,
) -> None:
    client, _ = served
    resp = await client.request(method, path, headers=headers)
    assert resp.status == status
    await resp.read()
    assert reads.all_closed()


async def test_a_stale_cached_etag_is_retried_and_both_reads_closed(
    served: tuple[TestClient, MemoryStore], reads: Reads
) -> None:
    client, store = served
    assert (await client.head("/data.bin")).status == 200  # caches the metadata
    store.put_sync("data.bin", DATA[::-1])  # replaced behind the gateway's back
    resp = await client.get("/data.bin", headers={"Range": "bytes=0-99"})
    assert resp.status == 206
    assert await resp.read() == DATA[::-1][:100]
    assert reads.all_closed()


@pytest.mark.parametrize("headers", [{}, {"Range": "bytes=1000-"}, {"Range": "bytes=0-9,-10"}])
async def test_reads_are_closed_when_the_store_fails_at_once(
    served: tuple[TestClient, MemoryStore], reads: Reads, headers: dict[str, str]
) -> None:
    client, store = served
    store.fail("get", Unavailable("the store went away"), times=100)
    assert (await client.get("/big", headers=headers)).status == 503
    assert reads.all_closed()


@pytest.mark.parametrize("headers", [{}, {"Range": "bytes=1000-"}, {"Range": "bytes=0-9,1000-"}])
async def test_reads_are_closed_when_the_store_fails_mid_body(
    served: tuple[TestClient, MemoryStore], reads: Reads, headers: dict[str, str]
) -> None:
    client, store = served
    # Past the engine's retries: every further GET of the object fails too.
    store.fail("get", Unavailable("gone"), times=1, after_bytes=128 * 1024)
    store.fail("get", Unavailable("gone"), times=100)
    resp = await client.get("/big", headers=headers)
    assert resp.status in (200, 206)
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    assert reads.opened and reads.all_closed()


async def test_reads_are_closed_when_the_client_goes_away(
    served: tuple[TestClient, MemoryStore], reads: Reads
) -> None:
    client, _ = served
    resp = await client.get("/big")
    assert resp.status == 200
    await resp.content.readexactly(1000)
    resp.close()  # the client hangs up mid-body
    for _ in range(100):
        if reads.all_closed():
            break
        await asyncio.sleep(0.01)
    assert reads.opened and reads.all_closed()

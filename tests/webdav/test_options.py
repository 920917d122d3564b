"""OPTIONS: the same class 2 answer on every path, without asking the store."""

from __future__ import annotations

import pytest
from pytest_aiohttp import AiohttpClient

from tests.apps import app_for
from tests.memorystore import MemoryStore

METHODS = {"GET", "HEAD", "OPTIONS", "PROPFIND", "PROPPATCH", "MKCOL", "PUT", "DELETE",
           "COPY", "MOVE", "LOCK", "UNLOCK"}


@pytest.mark.parametrize("path", ["/", "/file.txt", "/dir/", "/missing", "/no/such/dir/"])
async def test_options_answers_class_2_on_every_path_without_a_store_call(
    aiohttp_client: AiohttpClient, path: str
) -> None:
    store = MemoryStore()
    store.put_sync("file.txt", b"x")
    store.put_sync("dir/a", b"y")
    client = await aiohttp_client(app_for(store))
    resp = await client.options(path)
    assert resp.status == 200
    assert [t.strip() for t in resp.headers["DAV"].split(",")] == ["1", "2"]
    assert resp.headers["MS-Author-Via"] == "DAV"
    assert {m.strip() for m in resp.headers["Allow"].split(",")} == METHODS
    assert resp.headers["Content-Length"] == "0"
    assert await resp.read() == b""
    assert sum(store.calls.values()) == 0


async def test_options_on_a_share_mounted_below_the_root(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(app_for(MemoryStore(), mount="/bucket/"))
    resp = await client.options("/bucket/anything")
    assert resp.status == 200
    assert "2" in resp.headers["DAV"]

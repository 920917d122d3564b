"""A Depth 1 PROPFIND is streamed: a store failing once the 207 is sent cuts the connection
(never a clean, short multistatus); one failing at once gets a status."""

from __future__ import annotations

import aiohttp
import pytest
from pytest_aiohttp import AiohttpClient

from gateway.errors import Unavailable
from tests.apps import app_for
from tests.http.stores import FailsAfterFirstPage
from tests.memorystore import MemoryStore


async def test_a_store_failure_mid_propfind_aborts_the_connection(
    aiohttp_client: AiohttpClient,
) -> None:
    store = FailsAfterFirstPage()
    store.list_page_size = 10
    for i in range(50):
        store.put_sync(f"dir/f{i:03}", b"")
    client = await aiohttp_client(app_for(store))
    resp = await client.request("PROPFIND", "/dir/", headers={"Depth": "1"})
    assert resp.status == 207
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


async def test_a_store_failing_on_the_first_page_gets_a_status(
    aiohttp_client: AiohttpClient,
) -> None:
    store = MemoryStore()
    store.put_sync("dir/a", b"")
    client = await aiohttp_client(app_for(store))
    assert (await client.request("PROPFIND", "/dir/", headers={"Depth": "0"})).status == 207
    store.fail("list", Unavailable("the store went away"), times=100)
    resp = await client.request("PROPFIND", "/dir/", headers={"Depth": "1"})
    assert resp.status == 503

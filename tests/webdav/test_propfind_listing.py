"""PROPFIND Depth 1 over a listing opened with a small and a full first page at once."""

from __future__ import annotations

import asyncio

from pytest_aiohttp import AiohttpClient

from gateway.fs.listing import FIRST_KEYS
from tests.apps import app_for
from tests.fs.test_listing_opening import GatedStore, folder
from tests.webdav.davxml import multistatus

NAMES = [f"f{i:04}" + ("/x" if i % 5 == 0 else "") for i in range(1200)]


async def depth_1(aiohttp_client: AiohttpClient, store: GatedStore, path: str) -> list[str]:
    client = await aiohttp_client(app_for(store))
    resp = await client.request("PROPFIND", path, headers={"Depth": "1"})
    assert resp.status == 207
    return list(multistatus(await resp.read()))


async def test_members_come_once_each_in_order_when_the_small_page_answers_first(
    aiohttp_client: AiohttpClient,
) -> None:
    store = folder(NAMES, held=(1000,))
    store.releases = {FIRST_KEYS: 1000}
    hrefs = await depth_1(aiohttp_client, store, "/d/")
    members = [f"/d/f{i:04}" + ("/" if i % 5 == 0 else "") for i in range(1200)]
    assert hrefs == ["/d/", *members]
    assert store.calls["list"] == 1 + 2  # the small page, then the full ones


async def test_a_file_named_like_a_big_folder_cancels_the_folders_full_first_page(
    aiohttp_client: AiohttpClient,
) -> None:
    store = folder([f"f{i:04}" for i in range(FIRST_KEYS + 1)], held=(1000,))
    store.put_sync("d", b"a file")
    assert await depth_1(aiohttp_client, store, "/d") == ["/d"]
    await asyncio.sleep(0)
    assert store.cancelled == [1000]

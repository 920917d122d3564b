"""What a directory listing costs the store: one LIST per page, existence included."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.apps import app_for
from tests.memorystore import MemoryStore

MakeClient = Callable[..., Awaitable[Any]]


@pytest.mark.parametrize("query", ["?format=json", "?format=html"])
async def test_a_folder_listing_reads_each_page_once_and_nothing_else(
    aiohttp_client: MakeClient, query: str
) -> None:
    store = MemoryStore()
    store.list_page_size = 2
    for name in ("a", "b", "c", "d", "e"):
        store.put_sync(f"dir/{name}", b"x")
    store.put_sync("empty/", b"")
    client = await aiohttp_client(app_for(store))
    store.calls.clear()
    resp = await client.get("/dir/" + query)
    assert resp.status == 200
    text = await resp.text()
    assert all(f"/dir/{name}" in text for name in "abcde")
    assert dict(store.calls) == {"list": 3}  # its three pages: the first says it exists
    resp = await client.get("/empty/" + query)  # a folder made of its marker alone
    assert resp.status == 200
    resp = await client.get("/nope/" + query)
    assert resp.status == 404

"""MKCOL: a new collection is a ``dir/`` marker object; it needs a parent and no body."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.settings import Policy
from gateway.storage.base import ObjectStore
from tests.apps import app_for
from tests.memorystore import MemoryStore
from tests.webdav.writing import LOCK_FINDER, keys, read, store_fixture

store = store_fixture("memory", "local", "moto")


async def contents(store: ObjectStore) -> dict[str, bytes]:
    """Every key in the store with its bytes: what a refusal leaves exactly as it was."""
    return {key: await read(store, key) for key in await keys(store)}


@pytest.mark.parametrize("path", ["/litmus", "/litmus/"])
async def test_mkcol_writes_a_marker_201(aiohttp_client: Any, store: ObjectStore, path: str
                                         ) -> None:
    client = await aiohttp_client(app_for(store))
    resp = await client.request("MKCOL", path)
    assert resp.status == 201
    assert "litmus/" in await keys(store)
    found = await client.request("PROPFIND", "/litmus/", headers={"Depth": "0"})
    assert found.status == 207  # seen at once, despite the metadata cache


async def test_mkcol_inside_a_new_collection(aiohttp_client: Any, store: ObjectStore) -> None:
    client = await aiohttp_client(app_for(store))
    assert (await client.request("MKCOL", "/a/")).status == 201
    assert (await client.request("MKCOL", "/a/b/")).status == 201
    assert {"a/", "a/b/"} <= await keys(store)


@pytest.mark.parametrize("existing", ["thing", "thing/", "thing/child"])
async def test_mkcol_on_anything_existing_is_405(aiohttp_client: Any, store: ObjectStore,
                                                 existing: str) -> None:
    await store.put(existing, b"")
    client = await aiohttp_client(app_for(store))
    before = await contents(store)
    resp = await client.request("MKCOL", "/thing/")
    assert resp.status == 405 and "already exists" in await resp.text()
    assert await contents(store) == before


async def test_mkcol_on_the_root_is_405(aiohttp_client: Any) -> None:
    store = MemoryStore()
    client = await aiohttp_client(app_for(store))
    assert (await client.request("MKCOL", "/")).status == 405
    assert await contents(store) == {}


async def test_mkcol_with_a_missing_parent_is_409(aiohttp_client: Any, store: ObjectStore
                                                  ) -> None:
    client = await aiohttp_client(app_for(store))
    resp = await client.request("MKCOL", "/no/such/parent/")
    assert resp.status == 409
    assert await keys(store) == set()
    assert await contents(store) == {}


async def test_mkcol_with_a_body_is_415(aiohttp_client: Any) -> None:
    store = MemoryStore()
    client = await aiohttp_client(app_for(store))
    resp = await client.request("MKCOL", "/withbody/", data=b"<x/>",
                                headers={"Content-Type": "text/xml"})
    assert resp.status == 415
    assert store.objects == {}


async def test_mkcol_on_a_read_only_share_is_403(aiohttp_client: Any) -> None:
    store = MemoryStore()
    client = await aiohttp_client(app_for(store, policy=Policy(read_only=True)))
    resp = await client.request("MKCOL", "/d/")
    assert resp.status == 403 and "--read-only" in await resp.text()
    assert store.objects == {}


async def test_mkcol_of_client_metadata_folders_is_refused_by_default(aiohttp_client: Any
                                                                      ) -> None:
    store = MemoryStore()
    client = await aiohttp_client(app_for(store))
    resp = await client.request("MKCOL", "/.Trashes/")
    assert resp.status == 403 and "--store-client-noise" in await resp.text()
    assert store.objects == {}


async def test_mkcol_under_a_depth_infinity_lock_needs_the_token(aiohttp_client: Any) -> None:
    store = MemoryStore()
    store.put_sync("locked/", b"")
    client = await aiohttp_client(app_for(store))
    resp = await client.request("LOCK", "/locked/", data=LOCK_FINDER,
                                headers={"Depth": "infinity"})
    token = resp.headers["Lock-Token"]
    assert (await client.request("MKCOL", "/locked/sub/")).status == 423
    assert await contents(store) == {"locked/": b""}
    ok = await client.request("MKCOL", "/locked/sub/", headers={"If": f"({token})"})
    assert ok.status == 201
    assert "locked/sub/" in store.objects

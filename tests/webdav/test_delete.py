"""DELETE: refused by default; with --allow-delete one object, or a collection recursively
under its EXACT prefix, in batches, capped, with a 207 listing what failed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.errors import Upstream
from gateway.fs import ops
from gateway.fs.paths import DavPath
from gateway.settings import Policy
from gateway.storage.base import ObjectStore
from tests.apps import app_for, locks_of, port_of, read_reply, serving, share_of
from tests.memorystore import MemoryStore
from tests.webdav.davxml import multistatus
from tests.webdav.writing import LOCK_FINDER, keys, store_fixture

store = store_fixture("memory", "local", "moto")
DELETE = Policy(allow_delete=True)


async def arrange(store: ObjectStore, *names: str) -> None:
    for key in names:
        await store.put(key, b"" if key.endswith("/") else b"data")


@pytest.mark.parametrize("path", ["/f.txt", "/dir/", "/dir"])
async def test_delete_is_refused_by_default(aiohttp_client: Any, store: ObjectStore, path: str
                                            ) -> None:
    await arrange(store, "f.txt", "dir/", "dir/a")
    client = await aiohttp_client(app_for(store))
    resp = await client.delete(path)
    assert resp.status == 403
    text = await resp.text()
    assert "--allow-delete" in text and text.count("\n") == 1
    assert {"f.txt", "dir/a"} <= await keys(store)


async def test_nothing_there_is_404_and_a_foreign_lock_423_even_in_default_mode(
    aiohttp_client: Any,
) -> None:
    store = MemoryStore()
    store.put_sync("locked.txt", b"x")
    client = await aiohttp_client(app_for(store))
    assert (await client.delete("/missing.txt")).status == 404
    await client.request("LOCK", "/locked.txt", data=LOCK_FINDER, headers={"Depth": "0"})
    assert (await client.delete("/locked.txt")).status == 423
    assert "locked.txt" in store.objects


async def test_read_only_refuses_delete(aiohttp_client: Any) -> None:
    store = MemoryStore()
    store.put_sync("f", b"x")
    client = await aiohttp_client(app_for(store, policy=Policy(read_only=True,
                                                                 allow_delete=True)))
    resp = await client.delete("/f")
    assert resp.status == 403 and "--read-only" in await resp.text()


async def test_delete_a_file_204_and_it_is_gone_at_once(aiohttp_client: Any, store: ObjectStore
                                                        ) -> None:
    await arrange(store, "f.txt")
    client = await aiohttp_client(app_for(store, policy=DELETE))
    assert (await client.get("/f.txt")).status == 200  # cached
    assert (await client.delete("/f.txt")).status == 204
    assert await keys(store) == set()
    assert (await client.get("/f.txt")).status == 404


async def test_delete_of_nothing_is_404(aiohttp_client: Any, store: ObjectStore) -> None:
    client = await aiohttp_client(app_for(store, policy=DELETE))
    assert (await client.delete("/missing")).status == 404
    assert (await client.delete("/missing/")).status == 404


async def test_the_root_cannot_be_deleted(aiohttp_client: Any) -> None:
    store = MemoryStore()
    store.put_sync("f", b"x")
    client = await aiohttp_client(app_for(store, policy=DELETE))
    assert (await client.delete("/")).status == 403
    assert "f" in store.objects


@pytest.mark.parametrize("path", ["/dir/", "/dir"])
async def test_delete_a_collection_touches_only_its_exact_prefix(
    aiohttp_client: Any, store: ObjectStore, path: str
) -> None:
    await arrange(store, "dir/", "dir/a", "dir/sub/", "dir/sub/b", "dir2/", "dir2/x", "dir-x",
                  "dir.txt")
    client = await aiohttp_client(app_for(store, policy=DELETE))
    assert (await client.request("PROPFIND", "/dir/", headers={"Depth": "1"})).status == 207
    assert (await client.delete(path)).status == 204
    left = await keys(store)
    assert not any(k.startswith("dir/") for k in left)
    assert {"dir2/x", "dir-x", "dir.txt"} <= left
    assert (await client.request("PROPFIND", "/dir/", headers={"Depth": "1"})).status == 404


async def test_an_implicit_collection_is_deleted(aiohttp_client: Any, store: ObjectStore) -> None:
    await arrange(store, "photos/2024/a.jpg", "photos/2024/b.jpg", "photos/keep.jpg")
    client = await aiohttp_client(app_for(store, policy=DELETE))
    assert (await client.delete("/photos/2024/")).status == 204
    assert "photos/keep.jpg" in await keys(store)
    assert not any(k.startswith("photos/2024") for k in await keys(store))


async def test_nothing_outside_the_share_prefix_is_touched(aiohttp_client: Any) -> None:
    store = MemoryStore()
    for key in ("share/d/a", "share/d/b", "share/dx", "shared/d/a", "other/d/a"):
        store.put_sync(key, b"x")
    client = await aiohttp_client(app_for(store, policy=DELETE, prefix="share/"))
    assert (await client.delete("/d/")).status == 204
    assert set(store.objects) == {"share/dx", "shared/d/a", "other/d/a"}


async def test_a_collection_past_the_cap_is_refused_and_nothing_deleted(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ops, "MAX_TREE", 5)
    store = MemoryStore()
    for i in range(6):
        store.put_sync(f"big/{i}", b"x")
    client = await aiohttp_client(app_for(store, policy=DELETE))
    resp = await client.delete("/big/")
    assert resp.status == 403
    assert "more than 5 objects" in await resp.text()
    assert len(store.objects) == 6


async def test_members_that_fail_are_listed_in_a_207(aiohttp_client: Any) -> None:
    store = MemoryStore()
    for key in ("d/", "d/a", "d/b b", "d/c"):
        store.put_sync(key, b"x")
    store.fail("delete_one", Upstream("AccessDenied"), key="d/b b")
    client = await aiohttp_client(app_for(store, policy=DELETE))
    resp = await client.delete("/d/")
    assert resp.status == 207
    answers = multistatus(await resp.read())
    assert list(answers) == ["/d/b%20b"]
    assert set(store.objects) == {"d/b b"}


# ---- litmus: a '#' in the request target is part of the name --------------------------------


async def raw_delete(port: int, target: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"DELETE " + target + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    await writer.drain()
    status, _, _ = await read_reply(reader)
    writer.close()
    await writer.wait_closed()
    return status


async def test_delete_frag_hash_ment_does_not_delete_frag(store: ObjectStore) -> None:
    await arrange(store, "frag/", "frag/other", "frag/#real")
    async with serving(app_for(store, policy=DELETE)) as url:
        port = port_of(url)
        assert await raw_delete(port, b"/frag/#ment") == 404  # litmus: nothing by that name
        assert {"frag/", "frag/other", "frag/#real"} <= await keys(store)
        assert await raw_delete(port, b"/frag/#real") == 204
        assert {"frag/", "frag/other"} <= await keys(store)
        assert "frag/#real" not in await keys(store)


# ---- locks -----------------------------------------------------------------------------------


async def test_a_lock_below_the_collection_blocks_its_delete(aiohttp_client: Any) -> None:
    store = MemoryStore()
    for key in ("d/", "d/a", "d/b"):
        store.put_sync(key, b"x")
    app = app_for(store, policy=DELETE)
    client = await aiohttp_client(app)
    resp = await client.request("LOCK", "/d/a", data=LOCK_FINDER, headers={"Depth": "0"})
    token = resp.headers["Lock-Token"]
    refused = await client.delete("/d/")
    assert refused.status == 423
    assert set(store.objects) == {"d/", "d/a", "d/b"}
    assert (await client.delete("/d/", headers={"If": f"</d/a> ({token})"})).status == 204
    assert store.objects == {}
    assert await locks_of(app).discover(share_of(app), DavPath(("d", "a"))) == []


# ---- client noise -----------------------------------------------------------------------------


async def test_held_noise_is_deleted_from_the_noise_area_without_a_flag(aiohttp_client: Any
                                                                       ) -> None:
    store = MemoryStore()
    client = await aiohttp_client(app_for(store))
    await client.put("/._x", data=b"meta")
    assert (await client.delete("/._x")).status == 204
    assert (await client.delete("/._x")).status == 404
    assert store.calls["delete"] == 0 and store.calls["head"] == 0

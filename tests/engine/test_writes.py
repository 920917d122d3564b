"""Writes through the view keep its caches true: after each write the key's negative
entry, its old metadata, every listing page that could show it and the blocks of its
other versions are gone, without waiting for the metadata TTL (an hour here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from gateway.engine import StoreView
from gateway.engine.metacache import Missing
from gateway.errors import Exists, NotFound, Upstream
from gateway.storage.base import ObjectInfo
from tests.engine.support import make_view, read_key, stream
from tests.memorystore import MemoryStore

TTL = 3600.0
Write = Callable[[StoreView, str], Awaitable[object]]


async def put(view: StoreView, key: str) -> ObjectInfo:
    return await view.put(key, b"new bytes", "text/plain")


async def write_stream(view: StoreView, key: str) -> ObjectInfo:
    return await view.write_stream(key, stream(b"new bytes"), expected_size=9)


async def copy(view: StoreView, key: str) -> ObjectInfo:
    return await view.copy("source", key)


CREATES: dict[str, Write] = {"put": put, "write_stream": write_stream, "copy": copy}


async def delete(view: StoreView, key: str) -> None:
    await view.delete(key)


async def delete_many(view: StoreView, key: str) -> None:
    assert await view.delete_many([key, "other"]) == {}


DELETES: dict[str, Write] = {"delete": delete, "delete_many": delete_many}


async def cached_listing(view: StoreView, prefix: str) -> list[str]:
    page = await view.list_page(prefix)
    assert view.meta.page(prefix, None, 1000) is page  # cached until a write drops it
    return [info.key for info in page.objects]


@pytest.mark.parametrize("write", CREATES.values(), ids=CREATES.keys())
async def test_a_write_replaces_a_cached_negative_entry_and_drops_listings(write: Write) -> None:
    store = MemoryStore()
    store.put_sync("source", b"new bytes")
    view = make_view(store, ttl=TTL)
    with pytest.raises(NotFound):
        await view.stat("dir/new")
    assert isinstance(view.meta.info("dir/new"), Missing)
    assert await cached_listing(view, "dir/") == []
    assert await cached_listing(view, "") == ["source"]
    await write(view, "dir/new")
    heads = store.calls["head"]
    assert (await view.stat("dir/new")).size == 9  # learnt from the write itself
    assert store.calls["head"] == heads
    assert view.meta.page("dir/", None, 1000) is None
    assert view.meta.page("", None, 1000) is None
    assert [i.key for i in (await view.list_page("dir/")).objects] == ["dir/new"]


@pytest.mark.parametrize("write", CREATES.values(), ids=CREATES.keys())
async def test_a_write_replaces_cached_metadata_and_blocks_of_the_old_version(
    write: Write,
) -> None:
    store = MemoryStore()
    store.put_sync("source", b"new bytes")
    old = store.put_sync("k", b"old")
    view = make_view(store, ttl=TTL)
    assert await view.stat("k") == old
    assert await read_key(view, "k") == b"old"  # block 0 of the old version cached
    await write(view, "k")
    assert (await view.stat("k")).etag != old.etag
    assert await read_key(view, "k") == b"new bytes"


@pytest.mark.parametrize("write", DELETES.values(), ids=DELETES.keys())
async def test_a_delete_forgets_the_key_its_listings_and_its_blocks(write: Write) -> None:
    store = MemoryStore()
    info = store.put_sync("dir/k", b"bytes")
    store.put_sync("other", b"x")
    view = make_view(store, ttl=TTL)
    assert await view.stat("dir/k") == info
    assert await read_key(view, "dir/k") == b"bytes"
    assert await cached_listing(view, "dir/") == ["dir/k"]
    await write(view, "dir/k")
    assert view.meta.info("dir/k") is None
    assert view.meta.page("dir/", None, 1000) is None
    with pytest.raises(NotFound):
        await view.stat("dir/k")
    with pytest.raises(NotFound):
        await read_key(view, "dir/k")
    assert (await view.list_page("dir/")).objects == ()


async def test_a_create_that_finds_the_key_taken_forgets_the_negative_entry() -> None:
    store = MemoryStore()
    view = make_view(store, ttl=TTL)
    with pytest.raises(NotFound):
        await view.stat("k")
    theirs = store.put_sync("k", b"written by someone else")
    with pytest.raises(Exists):
        await view.put("k", b"", create_only=True)
    assert await view.stat("k") == theirs
    view.invalidate("k")
    with pytest.raises(NotFound):
        await view.stat("j")
    store.put_sync("j", b"theirs")
    with pytest.raises(Exists):
        await view.write_stream("j", stream(b"mine"), create_only=True)
    assert (await view.stat("j")).size == 6


async def test_a_failed_delete_many_still_forgets_its_keys() -> None:
    store = MemoryStore()
    info = store.put_sync("k", b"bytes")
    view = make_view(store, ttl=TTL)
    assert await view.stat("k") == info
    store.fail("delete_many", Upstream("store gone"))
    with pytest.raises(Upstream):
        await view.delete_many(["k"])
    assert view.meta.info("k") is None  # asked again next time

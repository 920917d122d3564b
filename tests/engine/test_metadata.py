"""Metadata: HEADs and listing pages are cached (404s too); writes invalidate at once."""

from __future__ import annotations

import pytest

from gateway.engine.metacache import MetadataCache
from gateway.errors import NotFound
from gateway.storage.base import ListPage
from tests.engine.support import make_view, read_key
from tests.memorystore import MemoryStore


async def test_a_second_stat_is_answered_from_the_cache() -> None:
    store = MemoryStore()
    info = store.put_sync("a/b.txt", b"hello")
    view = make_view(store)
    assert await view.stat("a/b.txt") == info
    assert await view.stat("a/b.txt") == info
    assert store.calls == {"head": 1}
    assert view.engine.counters.metadata_hits == 1


async def test_a_missing_key_is_cached_as_missing() -> None:
    store = MemoryStore()
    view = make_view(store)
    for _ in range(3):
        with pytest.raises(NotFound):
            await view.stat("._probe")
    assert store.calls == {"head": 1}


async def test_invalidate_forgets_the_key_and_its_missing_entry() -> None:
    store = MemoryStore()
    view = make_view(store)
    with pytest.raises(NotFound):
        await view.stat("new.txt")
    info = store.put_sync("new.txt", b"now it exists")
    view.invalidate("new.txt")
    assert await view.stat("new.txt") == info


async def test_remember_records_a_write_without_asking_the_store() -> None:
    store = MemoryStore()
    view = make_view(store)
    with pytest.raises(NotFound):
        await view.stat("w.txt")
    info = store.put_sync("w.txt", b"written through the gateway")
    view.remember(info)
    assert await view.stat("w.txt") == info
    assert store.calls == {"head": 1}


async def test_a_read_after_a_write_sees_the_new_version_at_once() -> None:
    store = MemoryStore()
    store.put_sync("f", b"version one")
    view = make_view(store)
    assert await read_key(view, "f") == b"version one"
    view.remember(store.put_sync("f", b"version two"))
    assert await read_key(view, "f") == b"version two"


async def test_listing_pages_are_cached() -> None:
    store = MemoryStore()
    store.put_sync("d/x", b"1")
    view = make_view(store)
    first = await view.list_page("d/")
    assert await view.list_page("d/") == first
    assert store.calls == {"list": 1}


async def test_a_write_invalidates_exactly_the_listings_that_could_show_it() -> None:
    store = MemoryStore()
    store.put_sync("a/b/c", b"1")
    store.put_sync("other/z", b"2")
    view = make_view(store)
    for prefix in ("", "a/", "a/b/", "other/"):
        await view.list_page(prefix)
    assert store.calls["list"] == 4
    store.put_sync("a/b/d", b"3")
    view.invalidate("a/b/d")
    page = await view.list_page("a/b/")
    assert [o.key for o in page.objects] == ["a/b/c", "a/b/d"]
    await view.list_page("")
    await view.list_page("a/")
    assert store.calls["list"] == 7  # the three ancestors were asked again
    await view.list_page("other/")
    assert store.calls["list"] == 7  # an unrelated listing stayed cached


async def test_remember_also_invalidates_the_listings_of_the_key() -> None:
    store = MemoryStore()
    view = make_view(store)
    assert (await view.list_page("dir/")).objects == ()
    view.remember(store.put_sync("dir/new", b"x"))
    assert [o.key for o in (await view.list_page("dir/")).objects] == ["dir/new"]


async def test_a_ttl_of_zero_disables_the_cache() -> None:
    store = MemoryStore()
    store.put_sync("k", b"v")
    view = make_view(store, ttl=0)
    await view.stat("k")
    await view.stat("k")
    await view.list_page("")
    await view.list_page("")
    assert store.calls == {"head": 2, "list": 2}


def test_the_listing_index_stays_bounded_when_the_cache_lets_pages_go() -> None:
    cache = MetadataCache(ttl=60, max_pages=4)
    page = ListPage((), (), None)
    for i in range(20):
        cache.put_page(f"p{i}/", None, 1000, page)
    assert cache.indexed_pages <= 2 * 4
    assert cache.page("p19/", None, 1000) == page
    cache.invalidate_listings("p19/x")
    assert cache.page("p19/", None, 1000) is None

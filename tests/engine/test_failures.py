"""Failures: a replaced object fails the read (never mixed bytes), transient store errors
are retried a bounded number of times, with the same If-Match, from where they stopped."""

from __future__ import annotations

from contextlib import aclosing

import pytest

from gateway.errors import AccessDenied, ObjectChanged, Unavailable, Upstream
from tests.engine.support import MiB, data_of, make_view, ranges, read_key, read_range
from tests.memorystore import MemoryStore


async def test_an_object_replaced_mid_read_raises_object_changed_to_the_reader() -> None:
    store = MemoryStore()
    old = data_of(32 * MiB, seed=1)
    old_info = store.put_sync("k", old)
    view = make_view(store, memory_mib=32)  # a window of one part: later GETs follow the reader
    received = b""
    async with await view.open("k") as read:
        with pytest.raises(ObjectChanged):
            async with aclosing(read.iter_range(0, read.info.size)) as chunks:
                async for chunk in chunks:
                    if not received:
                        store.put_sync("k", data_of(32 * MiB, seed=2))  # replaced by someone
                    received += chunk
    assert received == old[: len(received)]  # only bytes of the old version
    assert len(received) < len(old)
    counters = view.engine.counters
    assert counters.changed >= 1 and counters.aborts == 1
    # The engine forgot the old version: its metadata and its blocks.
    assert view.meta.info("k") is None
    assert view.engine.blocks.get(view.block_key("k", old_info.etag, 0)) is None
    assert await read_key(view, "k") == data_of(32 * MiB, seed=2)


async def test_an_object_deleted_mid_read_raises_object_changed() -> None:
    store = MemoryStore()
    store.put_sync("k", data_of(16 * MiB))
    view = make_view(store, memory_mib=32)  # a window of one part: later GETs follow the reader
    async with await view.open("k") as read:
        with pytest.raises(ObjectChanged):
            async with aclosing(read.iter_range(0, read.info.size)) as chunks:
                async for _ in chunks:
                    store.objects.pop("k", None)


async def test_a_transient_error_is_retried_and_the_read_succeeds() -> None:
    store = MemoryStore()
    data = data_of(12 * MiB)
    info = store.put_sync("k", data)
    view = make_view(store)
    async with await view.open("k", info) as read:
        store.fail("get", Unavailable(), times=2)
        assert await read_range(read, 0, len(data)) == data
    assert view.engine.counters.retries == 2
    assert all(if_match == info.etag for _, _, if_match in ranges(store))


async def test_a_failure_mid_body_resumes_the_range_where_it_stopped() -> None:
    store = MemoryStore()
    data = data_of(3 * MiB)
    info = store.put_sync("k", data)
    view = make_view(store)
    store.fail("get", Upstream("connection reset"), times=1, after_bytes=300_000)
    async with await view.open("k", info) as read:
        assert await read_range(read, 0, len(data)) == data
    got = ranges(store)
    assert got[0] == (0, MiB, info.etag)
    # the other blocks' GETs went out at once: find the one that resumed the first
    (resumed,) = [r for r in got[1:] if r[0] < MiB]
    assert resumed[0] > 0 and resumed[0] % (64 * 1024) == 0  # from the first missing byte
    assert resumed[2] == info.etag  # with the same If-Match
    assert view.engine.counters.retries == 1


async def test_the_first_request_is_retried_too() -> None:
    store = MemoryStore()
    store.put_sync("k", b"payload")
    view = make_view(store)
    store.fail("get", Unavailable(), times=1)
    assert await read_key(view, "k") == b"payload"
    assert store.calls["get"] == 2


async def test_retries_are_bounded_and_then_the_error_reaches_the_reader() -> None:
    store = MemoryStore()
    data = data_of(MiB)  # one block: one range, so every GET is an attempt at it
    info = store.put_sync("k", data)
    view = make_view(store, retries=3)
    store.fail("get", Unavailable("still down"), times=1000)
    async with await view.open("k", info) as read:
        with pytest.raises(Unavailable):
            await read_range(read, 0, len(data))
    assert store.calls["get"] == 4  # one attempt and three retries
    await view.engine.wait_idle()
    assert view.engine.budget.in_use == view.engine.blocks.cached_bytes == 0


async def test_a_failure_mid_read_after_retries_never_ends_cleanly() -> None:
    store = MemoryStore()
    data = data_of(16 * MiB)  # twice the window (an eighth of 64 MiB): fetched later
    info = store.put_sync("k", data)
    view = make_view(store, memory_mib=64, retries=2)
    received = 0
    async with await view.open("k", info) as read:
        with pytest.raises(Unavailable):
            async with aclosing(read.iter_range(0, len(data))) as chunks:
                async for chunk in chunks:
                    if not received:
                        store.fail("get", Unavailable(), times=1000)
                    received += len(chunk)
    assert 0 < received < len(data)


async def test_access_denied_is_not_retried() -> None:
    store = MemoryStore()
    info = store.put_sync("k", data_of(MiB))  # one block: one range
    view = make_view(store)
    store.fail("get", AccessDenied(), times=5)
    async with await view.open("k", info) as read:
        with pytest.raises(AccessDenied):
            await read_range(read, 0, info.size)
    assert store.calls["get"] == 1

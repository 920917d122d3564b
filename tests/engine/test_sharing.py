"""Readers of one object share blocks: in flight they are awaited, not fetched again."""

from __future__ import annotations

import asyncio

from tests.engine.support import (
    GatedStore,
    MiB,
    data_of,
    fetched_once,
    make_view,
    ranges,
    read_key,
    until,
)
from tests.memorystore import MemoryStore


async def test_two_concurrent_readers_of_one_object_fetch_each_block_once() -> None:
    store = MemoryStore()
    data = data_of(24 * MiB + 5)
    store.put_sync("big", data)
    view = make_view(store)
    first, second = await asyncio.gather(read_key(view, "big"), read_key(view, "big"))
    assert first == data and second == data
    assert fetched_once(ranges(store), len(data))
    assert store.bytes_served == len(data)


async def test_eight_concurrent_readers_cost_about_one_fetch() -> None:
    store = MemoryStore()
    data = data_of(16 * MiB)
    store.put_sync("big", data)
    view = make_view(store)
    results = await asyncio.gather(*(read_key(view, "big") for _ in range(8)))
    assert all(result == data for result in results)
    assert fetched_once(ranges(store), len(data))


async def test_a_reader_waits_on_a_block_in_flight_instead_of_fetching_it_again() -> None:
    store = GatedStore()
    data = data_of(4 * MiB)
    store.put_sync("big", data)
    view = make_view(store)
    store.gate.clear()  # the store is slow: the first block stays in flight
    first = asyncio.create_task(read_key(view, "big"))
    await until(lambda: store.calls["get"] == 1, "the first GET is sent")
    second = asyncio.create_task(read_key(view, "big"))
    await until(lambda: store.bodies_open >= 1, "the first body is being received")
    store.gate.set()
    assert await first == data
    assert await second == data
    assert fetched_once(ranges(store), len(data))
    assert view.engine.counters.blocks_shared >= 1


async def test_concurrent_opens_of_one_key_share_the_first_request() -> None:
    store = GatedStore()
    store.put_sync("small", b"shared bytes")
    view = make_view(store)
    store.gate.clear()
    readers = [asyncio.create_task(read_key(view, "small")) for _ in range(5)]
    await until(lambda: store.bodies_open == 1, "the one GET is answered")
    store.gate.set()
    assert await asyncio.gather(*readers) == [b"shared bytes"] * 5
    assert store.calls == {"get": 1}


async def test_views_of_two_stores_never_share_blocks() -> None:
    one, two = MemoryStore("one"), MemoryStore("two")
    assert one.put_sync("k", b"same bytes").etag == two.put_sync("k", b"same bytes").etag
    view = make_view(one)
    other = view.sibling(two)
    assert await read_key(view, "k") == b"same bytes"
    assert await read_key(other, "k") == b"same bytes"
    assert one.calls == {"get": 1}
    assert two.calls == {"get": 1}  # same key and etag, another store: its own block

"""Read-ahead: a window that starts at one block, doubles while the reader reads on,
resets on a seek, goes out as parallel ranged GETs and waits for a slow consumer."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from gateway.engine.readahead import window_cap
from tests.engine.support import GatedStore, MiB, data_of, make_view, ranges, read_range, until
from tests.memorystore import MemoryStore


async def test_the_window_starts_at_one_block_and_grows_to_part_sized_gets() -> None:
    store = MemoryStore()
    data = data_of(96 * MiB)
    store.put_sync("big", data)
    view = make_view(store, memory_mib=1024, part_mib=8)
    async with await view.open("big") as read:
        assert await read_range(read, 0, len(data)) == data
        assert read.window == 64 * MiB
    sizes = [end - start for start, end, _ in ranges(store)]
    assert sizes[0] == MiB  # a fast first byte
    assert sizes[1] == MiB
    assert max(sizes) == 8 * MiB  # parts of --read-part-size once the window is large
    assert sizes.index(8 * MiB) > 2
    assert len(sizes) < 96 // 2  # far fewer GETs than blocks


async def test_a_seek_resets_the_window_to_one_block() -> None:
    store = MemoryStore()
    data = data_of(64 * MiB)
    info = store.put_sync("big", data)
    view = make_view(store, memory_mib=1024)
    async with await view.open("big", info) as read:
        assert await read_range(read, 0, 24 * MiB) == data[: 24 * MiB]
        assert read.window > 4 * MiB
        before = len(store.get_ranges)
        async with aclosing(read.iter_range(40 * MiB, 64 * MiB)) as chunks:
            first = await anext(chunks)
            assert read.window == MiB
            assert ranges(store)[before] == (40 * MiB, 41 * MiB, info.etag)
            rest = b"".join([chunk async for chunk in chunks])
        assert first + rest == data[40 * MiB :]


async def test_consecutive_ranges_continue_the_window() -> None:
    store = MemoryStore()
    data = data_of(32 * MiB)
    info = store.put_sync("big", data)
    view = make_view(store, memory_mib=1024)
    async with await view.open("big", info) as read:
        assert await read_range(read, 0, 8 * MiB) == data[: 8 * MiB]
        grown = read.window
        assert grown > MiB
        assert await read_range(read, 8 * MiB, 9 * MiB) == data[8 * MiB : 9 * MiB]
        assert read.window >= grown


async def test_read_ahead_never_goes_past_the_requested_range() -> None:
    store = MemoryStore()
    data = data_of(32 * MiB)
    info = store.put_sync("big", data)
    view = make_view(store)
    async with await view.open("big", info) as read:
        assert await read_range(read, 3 * MiB, 9 * MiB) == data[3 * MiB : 9 * MiB]
    await view.engine.wait_idle()
    assert min(start for start, _, _ in ranges(store)) == 3 * MiB
    assert max(end for _, end, _ in ranges(store)) == 9 * MiB


async def test_one_reader_has_several_gets_in_flight_at_once() -> None:
    store = GatedStore()
    data = data_of(64 * MiB)
    info = store.put_sync("big", data)
    view = make_view(store, memory_mib=1024)
    async with await view.open("big", info) as read, aclosing(
        read.iter_range(0, info.size)
    ) as chunks:
        received = 0
        while received < 16 * MiB:  # let the window grow
            received += len(await anext(chunks))
        store.gate.clear()  # now the store is slow: GETs stay in flight

        async def rest() -> bytes:
            return b"".join([chunk async for chunk in chunks])

        consumer = asyncio.create_task(rest())  # reads on into what is already there
        await until(lambda: store.bodies_open >= 2, "two GETs stream at once")
        assert view.engine.counters.inflight_requests >= 2
        store.gate.set()
        assert received + len(await consumer) == len(data)


async def test_a_slow_consumer_holds_at_most_one_window_and_the_store_waits() -> None:
    store = MemoryStore()
    data = data_of(112 * MiB)
    info = store.put_sync("big", data)
    view = make_view(store, memory_mib=512)
    engine = view.engine
    cap = window_cap(engine.tuning, engine.budget.limit)
    async with await view.open("big", info) as read, aclosing(
        read.iter_range(0, info.size)
    ) as chunks:
        received = 0
        while received < 40 * MiB:
            received += len(await anext(chunks))
        # The consumer stops; everything the engine wanted to do on its own finishes.
        await engine.wait_idle()
        assert store.bytes_served <= received + cap + MiB
        assert engine.budget.in_use <= cap + 2 * MiB + engine.tuning.streaming_after
        served = store.bytes_served
        await engine.wait_idle()
        assert store.bytes_served == served  # nothing more without the consumer
        rest = b"".join([chunk async for chunk in chunks])
    assert received + len(rest) == len(data)

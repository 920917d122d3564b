"""Read-ahead: a window that starts at the span a range asks for (up to its cap), doubles
while the reader reads on, starts over on a seek, goes out as many parallel ranged GETs
and waits for a slow consumer."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from gateway.engine.readahead import FEW_READERS, GETS_PER_WINDOW, window_cap
from gateway.engine.reader import OpenRead
from tests.engine.support import GatedStore, MiB, data_of, make_view, ranges, read_range, until
from tests.memorystore import MemoryStore


async def test_a_whole_read_asks_for_its_whole_window_at_once_in_many_gets() -> None:
    store = GatedStore()
    data = data_of(160 * MiB)
    info = store.put_sync("big", data)
    view = make_view(store, memory_mib=1024, part_mib=8)
    cap = window_cap(view.engine.tuning, view.engine.budget.limit)
    assert cap == 128 * MiB
    store.answer.clear()  # the store answers nothing yet: no byte reaches the reader
    async with await view.open("big", info) as read:
        reader = asyncio.create_task(read_range(read, 0, len(data)))
        await until(lambda: store.asked >= 16, "the whole window asked for")
        assert read.window == cap  # no ramp: the GET said how far it reads
        for _ in range(100):
            await asyncio.sleep(0)
        assert store.asked == 16  # 16 GETs of 8 MiB, and nothing past the window
        store.answer.set()
        assert await reader == data
    sizes = [end - start for start, end, _ in ranges(store)]
    assert sizes[:16] == [8 * MiB] * 16
    assert max(sizes) <= 8 * MiB  # never above --read-part-size
    assert len(sizes) <= 160 // 8  # far fewer GETs than blocks


async def test_a_first_block_from_open_is_followed_by_the_rest_of_the_window_at_once() -> None:
    store = MemoryStore()
    data = data_of(160 * MiB)
    store.put_sync("big", data)
    view = make_view(store, memory_mib=1024, part_mib=8)
    async with await view.open("big") as read:
        assert await read_range(read, 0, len(data)) == data
        assert read.window == 128 * MiB
    got = ranges(store)
    assert got[0][:2] == (0, MiB)  # a fast first byte (and the metadata)
    # then the rest of the window, blocks 1..127, at once: 16 GETs of 8 blocks (7 last)
    assert sorted(start for start, _, _ in got[1:17]) == [(1 + 8 * n) * MiB for n in range(16)]
    assert max(end for _, end, _ in got[1:17]) == 128 * MiB


async def test_a_seek_starts_the_window_over_at_the_new_ranges_span() -> None:
    store = MemoryStore()
    data = data_of(64 * MiB)
    info = store.put_sync("big", data)
    view = make_view(store, memory_mib=1024)
    async with await view.open("big", info) as read:
        assert await read_range(read, 0, 24 * MiB) == data[: 24 * MiB]
        before = len(store.get_ranges)
        async with aclosing(read.iter_range(40 * MiB, 42 * MiB)) as chunks:
            first = await anext(chunks)
            assert read.window == 2 * MiB  # what the range asks for, not the old window
            assert ranges(store)[before] == (40 * MiB, 41 * MiB, info.etag)
            rest = b"".join([chunk async for chunk in chunks])
        assert first + rest == data[40 * MiB : 42 * MiB]
        async with aclosing(read.iter_range(10 * MiB, 64 * MiB)) as chunks:
            await anext(chunks)
            assert read.window == 54 * MiB


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


async def test_one_reader_has_many_gets_streaming_at_once() -> None:
    store = GatedStore()
    data = data_of(64 * MiB)
    info = store.put_sync("big", data)
    view = make_view(store, memory_mib=1024)
    store.gate.clear()  # a slow store: every body stalls after its first chunk
    async with await view.open("big", info) as read:
        reader = asyncio.create_task(read_range(read, 0, len(data)))
        await until(lambda: store.bodies_open >= GETS_PER_WINDOW, "many GETs stream at once")
        assert view.engine.counters.inflight_requests >= GETS_PER_WINDOW
        store.gate.set()
        assert await reader == data


async def test_an_abandoned_whole_read_fetches_no_more_than_its_window() -> None:
    store = MemoryStore()
    info = store.put_sync("big", data_of(96 * MiB))
    view = make_view(store, memory_mib=256)
    read = await view.open("big", info)
    chunks = read.iter_range(0, info.size)
    await anext(chunks)  # the client reads a little and hangs up
    await chunks.aclose()
    await read.aclose()
    await view.engine.wait_idle()
    assert store.bytes_served <= window_cap(view.engine.tuning, view.engine.budget.limit) + MiB
    assert view.engine.budget.in_use == view.engine.blocks.cached_bytes


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


async def crowd_windows(reads: list[OpenRead], size: int) -> list[int]:
    """Start ``reads`` one after the other, read each into its second block (where it
    looks at the crowd again) and return their windows; the first one's is checked alone."""
    streams = [read.iter_range(0, size) for read in reads]
    await anext(streams[0])
    assert reads[0].window == 64 * MiB  # alone: the whole span, under a quarter
    for stream in streams[1:]:
        await anext(stream)
    for stream in streams:  # on into the next block, where each looks again
        got = 0
        while got <= MiB:
            got += len(await anext(stream))
    windows = [read.window for read in reads]
    for stream, read in zip(streams, reads, strict=True):
        await stream.aclose()
        await read.aclose()
    return windows


async def test_more_than_a_few_reads_in_the_process_share_smaller_windows() -> None:
    store = MemoryStore()
    info = store.put_sync("big", data_of(64 * MiB))
    view = make_view(store, memory_mib=512)  # a budget of 400 MiB: caps of 100 and 50 MiB
    reads = [await view.open("big", info) for _ in range(FEW_READERS + 1)]
    assert await crowd_windows(reads, info.size) == [50 * MiB] * len(reads)  # an eighth each
    await view.engine.wait_idle()


async def test_reads_of_every_share_count_in_the_crowd() -> None:
    """The budget is the process's: reads on two stores (two shares) are one crowd."""
    one, other = MemoryStore(), MemoryStore()
    info = one.put_sync("big", data_of(64 * MiB))
    theirs = other.put_sync("big", data_of(64 * MiB))
    view = make_view(one, memory_mib=512)
    sibling = view.sibling(other)
    reads = [await view.open("big", info), *[await sibling.open("big", theirs)
                                             for _ in range(FEW_READERS)]]
    assert await crowd_windows(reads, info.size) == [50 * MiB] * len(reads)
    await view.engine.wait_idle()

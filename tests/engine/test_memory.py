"""One memory budget: blocks in flight, pinned and cached never exceed it, whatever the
number of readers; a cancelled reader gives back what it held."""

from __future__ import annotations

import asyncio
from contextlib import aclosing, suppress
from typing import Any

from gateway.engine import StoreView
from tests.engine.support import (
    GatedStore,
    MiB,
    data_of,
    fetched_once,
    make_view,
    ranges,
    read_key,
    read_range,
    until,
)
from tests.memorystore import MemoryStore


async def test_thirty_two_concurrent_readers_never_exceed_the_budget() -> None:
    store = MemoryStore()
    data = data_of(24 * MiB)
    store.put_sync("big", data)
    view = make_view(store, memory_mib=8)
    results = await asyncio.gather(*(read_key(view, "big") for _ in range(32)))
    assert all(result == data for result in results)
    budget = view.engine.budget
    assert budget.peak <= budget.limit
    await view.engine.wait_idle()
    assert budget.in_use == view.engine.blocks.cached_bytes
    view.engine.drop_cache()
    assert budget.in_use == 0


async def test_readers_of_different_objects_share_the_budget_too() -> None:
    store = MemoryStore()
    objects = {f"k{i}": data_of(6 * MiB + i, seed=i) for i in range(12)}
    for key, data in objects.items():
        store.put_sync(key, data)
    view = make_view(store, memory_mib=8)
    keys = list(objects) * 3
    results = await asyncio.gather(*(read_key(view, key) for key in keys))
    assert results == [objects[key] for key in keys]
    assert view.engine.budget.peak <= view.engine.budget.limit


async def test_the_cache_gives_way_to_reads_when_the_budget_is_full() -> None:
    store = MemoryStore()
    for i in range(20):
        store.put_sync(f"small{i}", data_of(MiB - 1, seed=i))
    view = make_view(store, memory_mib=8)
    for i in range(20):  # each leaves its block cached; the cache holds a share of 8 MiB
        assert await read_key(view, f"small{i}") == data_of(MiB - 1, seed=i)
    budget = view.engine.budget
    assert budget.peak <= budget.limit
    assert view.engine.blocks.cached_bytes <= budget.limit // 2


async def test_a_cancelled_reader_frees_its_blocks_and_its_read_ahead() -> None:
    store = GatedStore()
    data = data_of(64 * MiB)
    store.put_sync("big", data)
    view = make_view(store, memory_mib=256)
    engine = view.engine
    got_some = asyncio.Event()

    async def client() -> None:
        async with await view.open("big") as read, aclosing(
            read.iter_range(0, read.info.size)
        ) as chunks:
            received = 0
            async for chunk in chunks:
                received += len(chunk)
                if received >= 12 * MiB and not got_some.is_set():
                    store.gate.clear()  # the store slows down: read-ahead stays in flight
                    got_some.set()

    task = asyncio.create_task(client())
    await got_some.wait()
    await until(lambda: store.bodies_open >= 1, "read-ahead in flight")
    assert engine.budget.in_use > engine.blocks.cached_bytes
    task.cancel()  # the client disconnects
    await asyncio.gather(task, return_exceptions=True)
    await engine.wait_idle()  # cancelled fetches wind down (the gate is still closed)
    assert engine.counters.fetches_cancelled >= 1
    assert store.bodies_open == 0
    assert engine.budget.in_use == engine.blocks.cached_bytes
    engine.drop_cache()
    assert engine.budget.in_use == 0


async def test_a_read_abandoned_before_iterating_gives_back_its_first_block() -> None:
    store = MemoryStore()
    store.put_sync("big", data_of(4 * MiB))
    view = make_view(store)
    read = await view.open("big")
    await read.aclose()
    await view.engine.wait_idle()
    view.engine.drop_cache()
    assert view.engine.budget.in_use == 0


async def open_then_cancel(view: StoreView, key: str, when: Any, what: str) -> None:
    """Open ``key`` and cancel the open once ``when()`` holds."""
    opening = asyncio.create_task(view.open(key))
    await until(when, what)
    opening.cancel()
    await asyncio.gather(opening, return_exceptions=True)
    assert opening.cancelled()


async def test_an_open_cancelled_while_waiting_for_its_first_request_leaks_nothing() -> None:
    store = GatedStore()
    store.put_sync("big", data_of(4 * MiB))
    view = make_view(store)
    store.answer.clear()
    await open_then_cancel(view, "big", lambda: store.asked == 1, "first GET sent")
    store.answer.set()
    await view.engine.wait_idle()
    view.engine.drop_cache()
    assert view.engine.budget.in_use == 0
    assert store.bodies_open == 0


async def one_of_two_opens_cancelled(cancel_leader: bool) -> GatedStore:
    """Two opens of one key while its first GET is unanswered; the leader (the first) or
    the follower is cancelled, the other reads the whole object. Returns the store."""
    store = GatedStore()
    data = data_of(3 * MiB)
    store.put_sync("big", data)
    view = make_view(store)
    store.answer.clear()
    if cancel_leader:
        gone = asyncio.create_task(view.open("big"))  # sends the first GET
        stays = asyncio.create_task(read_key(view, "big"))  # waits on it
    else:
        stays = asyncio.create_task(read_key(view, "big"))
        gone = asyncio.create_task(view.open("big"))
    await until(lambda: store.asked == 1, "one shared first GET")
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    store.answer.set()
    assert await stays == data
    assert fetched_once(ranges(store), len(data))
    await view.engine.wait_idle()
    view.engine.drop_cache()
    assert view.engine.budget.in_use == 0
    return store


async def test_the_leader_of_a_shared_open_cancelled_the_follower_opens_again() -> None:
    store = await one_of_two_opens_cancelled(cancel_leader=True)
    # The follower sent a first GET of its own; the leader's was never answered.
    assert store.asked == len(ranges(store)) + 1


async def test_a_follower_of_a_shared_open_cancelled_the_leader_still_reads() -> None:
    store = await one_of_two_opens_cancelled(cancel_leader=False)
    assert store.asked == len(ranges(store))  # the one first GET, shared


async def test_at_the_limit_read_ahead_shrinks_and_the_read_still_completes() -> None:
    store = MemoryStore()
    data = data_of(32 * MiB)
    info = store.put_sync("big", data)
    view = make_view(store, memory_mib=64)
    budget = view.engine.budget
    held = await budget.acquire(budget.limit - 4 * MiB)  # uploads (say) hold most of it
    async with await view.open("big", info) as read:
        assert await read_range(read, 0, len(data)) == data
    budget.release(held)
    assert budget.peak <= budget.limit
    assert max(end - start for start, end, _ in ranges(store)) <= 4 * MiB


async def test_a_small_object_is_read_by_the_opening_task_alone() -> None:
    store = MemoryStore()
    store.put_sync("small", b"four kib at most")
    view = make_view(store)
    engine = view.engine
    spawned: list[object] = []
    spawn = engine.spawn

    def counting(coro: Any) -> asyncio.Task[Any]:
        spawned.append(coro)
        return spawn(coro)

    engine.spawn = counting  # type: ignore[method-assign]
    async with await view.open("small") as read:
        assert read._first is not None and read._first.complete  # whole when open returns
        assert await read_range(read, 0, read.info.size) == b"four kib at most"
    assert spawned == []  # the GET and its body, both in the caller's task


async def test_an_open_cancelled_while_a_small_body_arrives_leaks_nothing() -> None:
    store = GatedStore()
    store.put_sync("small", b"small bytes")
    view = make_view(store)
    free = [s._value for s in view.ctx.slots._semaphores]  # connection slots
    store.gate.clear()
    await open_then_cancel(view, "small", lambda: store.bodies_open == 1, "body received")
    await view.engine.wait_idle()
    assert store.bodies_open == 0
    assert [s._value for s in view.ctx.slots._semaphores] == free
    view.engine.drop_cache()
    assert view.engine.budget.in_use == 0
    store.gate.set()
    assert await read_key(view, "small") == b"small bytes"


async def test_a_reader_waiting_for_memory_holds_none_of_the_bytes_it_handed_out() -> None:
    """Handed-out bytes leave with their block's reservation: a reader suspended until
    memory frees up for its next block keeps no reference to the last piece it gave. Kept,
    each waiting reader would hold a block the budget already counts as free (32 readers
    of the disk cache went 32 MiB past --memory-target that way)."""
    store = MemoryStore()
    data = data_of(32 * MiB)
    store.put_sync("big", data)
    view = make_view(store, memory_mib=64)
    budget = view.engine.budget
    taken: list[int] = []

    async def take_all() -> None:  # in line for every byte that frees up
        while True:
            taken.append(await budget.acquire(64 * 1024))

    handed: list[bytes] = []
    async with await view.open("big") as read, aclosing(
        read.iter_range(0, read.info.size)
    ) as chunks:
        taker = asyncio.ensure_future(take_all())
        while True:
            following = asyncio.ensure_future(anext(chunks))
            for _ in range(1000):
                if following.done():
                    break
                await asyncio.sleep(0)
            if not following.done():
                break  # waiting for memory
            handed.append(following.result())
        assert handed, "the blocks the reader had pinned were handed out"
        assert budget.waiting >= 1, "the reader waits for memory"
        frame = chunks.ag_frame
        assert frame is not None
        assert not any(value is handed[-1] for value in frame.f_locals.values())
        taker.cancel()
        with suppress(asyncio.CancelledError):
            await taker
        budget.release(sum(taken))
        rest = [await following] + [chunk async for chunk in chunks]
    assert b"".join(handed + rest) == data

"""The memory budget: never exceeded, first come first served, cache bytes reclaimable."""

from __future__ import annotations

import asyncio

import pytest

from gateway.engine.budget import MemoryBudget, MiB, buffer_budget, target_for
from tests.engine.support import until


async def test_reservations_within_the_limit_are_granted_at_once() -> None:
    budget = MemoryBudget(100)
    assert await budget.acquire(60) == 60
    assert budget.try_acquire(40) == 40
    assert budget.in_use == 100
    assert budget.try_acquire(1) == 0
    budget.release(100)
    assert budget.in_use == 0
    assert budget.peak == 100


async def test_a_reservation_past_the_limit_waits_until_bytes_are_released() -> None:
    budget = MemoryBudget(100)
    await budget.acquire(80)
    waiter = asyncio.create_task(budget.acquire(50))
    await until(lambda: budget.waiting == 1, "the second reservation waits")
    assert not waiter.done()
    budget.release(80)
    assert await waiter == 50
    assert budget.peak <= budget.limit


async def test_waiters_are_served_in_order_and_try_acquire_does_not_jump_the_queue() -> None:
    budget = MemoryBudget(100)
    await budget.acquire(100)
    first = asyncio.create_task(budget.acquire(60))
    await until(lambda: budget.waiting == 1, "queued")
    second = asyncio.create_task(budget.acquire(10))
    await until(lambda: budget.waiting == 2, "queued")
    budget.release(30)
    assert budget.try_acquire(10) == 0  # someone is waiting: no overtaking
    budget.release(70)
    assert await first == 60
    assert await second == 10


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    budget = MemoryBudget(100)
    await budget.acquire(100)
    waiter = asyncio.create_task(budget.acquire(50))
    await until(lambda: budget.waiting == 1, "queued")
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert budget.waiting == 0
    budget.release(100)
    assert budget.in_use == 0


async def test_a_waiter_cancelled_just_before_a_release_is_cancelled_not_an_error() -> None:
    """The release drops the cancelled entry from the queue before the waiter runs again:
    the waiter still ends as cancelled (a reader cut off while waiting for memory), never
    with an error of the budget's own."""
    budget = MemoryBudget(100)
    await budget.acquire(100)
    waiter = asyncio.create_task(budget.acquire(10))
    after = asyncio.create_task(budget.acquire(20))
    await until(lambda: budget.waiting == 2, "queued")
    waiter.cancel()
    budget.release(100)  # before the cancelled waiter has run
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await after == 20
    assert budget.in_use == 20 and budget.waiting == 0


async def test_a_reservation_larger_than_the_budget_is_refused_never_clamped() -> None:
    """A clamped reservation would let bytes be held that the budget does not count."""
    budget = MemoryBudget(100)
    with pytest.raises(ValueError, match="can never fit"):
        await budget.acquire(500)
    with pytest.raises(ValueError, match="can never fit"):
        budget.try_acquire(101)
    assert budget.in_use == 0
    assert await budget.acquire(100) == 100
    budget.release(100)


async def test_cached_bytes_are_reclaimed_before_anyone_waits() -> None:
    budget = MemoryBudget(100)
    cached = [30, 30]

    def reclaim(wanted: int) -> int:
        freed = 0
        while cached and freed < wanted:
            n = cached.pop()
            budget.release(n)
            freed += n
        return freed

    budget.add_reclaimer(reclaim)
    await budget.acquire(60)  # held by the "cache"
    assert budget.try_acquire(70) == 70  # fits after evicting one cached entry, not both
    assert cached == [30]
    assert budget.in_use == 100
    assert budget.try_acquire(1) == 1  # the last cached entry makes room
    assert cached == []
    assert budget.try_acquire(30) == 0  # nothing left to reclaim: refused
    assert budget.peak <= budget.limit


def test_releasing_more_than_reserved_is_a_bug() -> None:
    budget = MemoryBudget(10)
    with pytest.raises(RuntimeError):
        budget.release(1)


@pytest.mark.parametrize(("target_mib", "buffers_mib"), [(64, 48), (384, 288), (512, 400),
                                                         (2048, 1936)])
def test_buffers_get_the_memory_target_less_a_reserve_for_the_process(
    target_mib: int, buffers_mib: int
) -> None:
    """A quarter of the target, at most 112 MiB, is left for the interpreter and sockets,
    so a process whose buffers are all in use stays near --memory-target."""
    assert buffer_budget(target_mib * MiB) == buffers_mib * MiB


@pytest.mark.parametrize("buffers", [1, 5 * MiB, 48 * MiB, 288 * MiB + 1, 1024 * MiB])
def test_a_refusal_names_the_smallest_target_whose_buffers_hold_what_is_needed(
    buffers: int
) -> None:
    target = target_for(buffers)
    assert buffer_budget(target * MiB) >= buffers
    assert buffer_budget((target - 1) * MiB) < buffers


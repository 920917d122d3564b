"""What the engine's mechanics are given: the process-wide parts and one store's slice.

``Shared`` is what every client of the process shares (the memory budget, the block
cache, the limit on ranged GETs in flight, the counters, background tasks); ``Engine``
adds the making of views to it. ``ReadContext`` is the small part of one ``StoreView``
that a fetch or a read needs: the store, its block-key identity, its connection slots and
its readers. Fetches and reads get this, not the view, so the mechanics never import the
view (no import cycle) and say exactly what they use.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, TypeVar

from gateway.engine.blocks import BlockCache, BlockKey
from gateway.engine.budget import MemoryBudget, buffer_budget
from gateway.engine.counters import Counters
from gateway.engine.events import CacheEvents
from gateway.engine.guard import ProcessWriteGuard, WriteGuard
from gateway.engine.mtimes import MtimeIndex
from gateway.engine.tuning import Tuning
from gateway.settings import EngineSettings
from gateway.storage.base import ObjectStore

T = TypeVar("T")


class Slots:
    """Connection slots: the store's and the process's semaphores, taken in that order."""

    def __init__(self, *semaphores: asyncio.Semaphore) -> None:
        self._semaphores = semaphores

    async def acquire(self) -> None:
        taken: list[asyncio.Semaphore] = []
        try:
            for semaphore in self._semaphores:
                await semaphore.acquire()
                taken.append(semaphore)
        except BaseException:
            for semaphore in reversed(taken):
                semaphore.release()
            raise

    def release(self) -> None:
        for semaphore in reversed(self._semaphores):
            semaphore.release()


class Shared:
    """The parts of the engine every view and every client of the process share."""

    def __init__(self, settings: EngineSettings, tuning: Tuning | None = None) -> None:
        self.settings = settings
        self.budget = MemoryBudget(buffer_budget(settings.memory_target_bytes))
        tuning = tuning or Tuning.from_settings(settings)
        if tuning.block_size > self.budget.limit:
            tuning = replace(tuning, block_size=self.budget.limit)
        self.tuning = tuning
        self.counters = Counters(budget=self.budget)
        # Ranges being read in the whole process: the budget's scope, which read-ahead's
        # window cap (readahead.window_cap) shares among them.
        self.reads = 0
        self.blocks = BlockCache(
            self.budget, int(self.budget.limit * tuning.cache_share), self.counters
        )
        self.fetch_slots = asyncio.Semaphore(tuning.max_fetches)
        # One creator of a new name at a time; Engine.use_state adds the state store's
        # guard when other processes share it.
        self.write_guard: WriteGuard = ProcessWriteGuard()
        # Writes told to every process's caches once a state store is attached (Engine).
        self.events = CacheEvents()
        # Stored modification times by object version, for listings (gateway.engine.mtimes).
        self.mtimes = MtimeIndex()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)

    def next_view_id(self) -> int:
        return next(self._ids)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run background work the engine owns (fetches); ``close`` cancels it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: failures reach readers through their blocks

    @property
    def busy(self) -> int:
        """Background tasks (fetches, first GETs) still running."""
        return len(self._tasks)

    async def wait_idle(self) -> None:
        """Wait until no background work is left (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def drop_cache(self) -> None:
        """Give every idle cached block back to the budget."""
        self.blocks.clear()

    async def close(self) -> None:
        self.events.detach()
        for task in list(self._tasks):
            task.cancel()
        await self.wait_idle()
        if self.blocks.disk is not None:
            # Before the memory cache goes: the blocks the disk writer owes are written
            # from it (a restart then finds them).
            await self.blocks.disk.flush()
        self.blocks.clear()


class ReadContext:
    """One store's slice of the engine, as fetches and reads see it."""

    __slots__ = ("object_changed", "reading", "shared", "slots", "store", "view_id")

    def __init__(
        self,
        shared: Shared,
        store: ObjectStore,
        view_id: int,
        slots: Slots,
        object_changed: Callable[[str, str], None],
    ) -> None:
        self.shared = shared
        self.store = store
        self.view_id = view_id
        self.slots = slots
        # A read that finds ``key`` no longer at ``etag`` tells the view to forget it.
        self.object_changed = object_changed
        self.reading: Counter[tuple[str, str]] = Counter()  # active readers per version

    @property
    def blocks(self) -> BlockCache:
        return self.shared.blocks

    @property
    def budget(self) -> MemoryBudget:
        return self.shared.budget

    @property
    def counters(self) -> Counters:
        return self.shared.counters

    @property
    def tuning(self) -> Tuning:
        return self.shared.tuning

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        return self.shared.spawn(coro)

    def block_key(self, key: str, etag: str, index: int) -> BlockKey:
        return (self.view_id, key, etag, index)

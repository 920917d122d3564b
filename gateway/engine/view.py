"""Engine and StoreView: what the layers above see of the stream engine.

One ``Engine`` per process holds what every client shares: the memory budget, the block
cache, the process-wide limit on ranged GETs in flight and the counters. Each store gets
a ``StoreView`` (``Engine.view(store)``) with its own identity in block keys, its own
connection limit and its metadata cache. The layers above only use ``StoreView``:
``stat``, ``open``/``OpenRead.iter_range``, ``list_page``, ``remember``, ``invalidate``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from gateway.engine.blocks import Block, BlockCache, BlockKey
from gateway.engine.budget import MemoryBudget
from gateway.engine.counters import Counters
from gateway.engine.fetch import Fetch, Slots
from gateway.engine.metacache import MetadataCache, Missing
from gateway.engine.reader import OpenRead
from gateway.engine.tuning import Tuning, backoff_delay
from gateway.errors import NotFound, Upstream
from gateway.settings import EngineSettings, StoreSettings
from gateway.storage.base import GetResult, ListPage, ObjectInfo, ObjectStore

DEFAULT_CONNECTIONS = 64
T = TypeVar("T")


@dataclass
class _Opening:
    """A first GET of a key in flight, awaited by every ``open`` of that key meanwhile."""

    task: asyncio.Task[tuple[ObjectInfo, Block | None]] | None = None
    waiters: int = 0


class StoreView:
    def __init__(
        self, engine: Engine, store: ObjectStore, max_connections: int | None = None
    ) -> None:
        self.engine = engine
        self.store = store
        self.id = engine.next_view_id()
        connections = max_connections or _store_connections(store)
        # Ranged GETs may use three quarters of the store's connections: HEADs, listings
        # and uploads keep the rest instead of queueing behind read-ahead.
        self.slots = Slots(
            asyncio.Semaphore(max(1, connections - connections // 4)), engine.fetch_slots
        )
        self.meta = MetadataCache(engine.settings.metadata_ttl)
        self.reading: Counter[tuple[str, str]] = Counter()  # active readers per version
        self._opening: dict[str, _Opening] = {}

    def __repr__(self) -> str:
        return f"StoreView({self.store.description})"

    def block_key(self, key: str, etag: str, index: int) -> BlockKey:
        return (self.id, key, etag, index)

    # ---- metadata ----------------------------------------------------------------------
    async def stat(self, key: str) -> ObjectInfo:
        """HEAD through the metadata cache (404s are cached too)."""
        counters = self.engine.counters
        known = self.meta.info(key)
        if known is not None:
            counters.metadata_hits += 1
            if isinstance(known, Missing):
                raise NotFound(f"no object {key!r}")
            return known
        counters.metadata_misses += 1
        counters.store_heads += 1
        try:
            info = await self.store.head(key)
        except NotFound:
            self.meta.put_missing(key)
            raise
        self.meta.put_info(info)
        return info

    async def list_page(
        self, prefix: str, token: str | None = None, max_keys: int = 1000
    ) -> ListPage:
        counters = self.engine.counters
        page = self.meta.page(prefix, token, max_keys)
        if page is not None:
            counters.metadata_hits += 1
            return page
        counters.metadata_misses += 1
        counters.store_lists += 1
        page = await self.store.list_page(prefix, "/", token, max_keys)
        self.meta.put_page(prefix, token, max_keys, page)
        return page

    def remember(self, info: ObjectInfo) -> None:
        """Record metadata learnt from a write through the gateway: the key's listings and
        the blocks of its other versions are forgotten at once."""
        self.meta.put_info(info)
        self.meta.invalidate_listings(info.key)
        self.engine.blocks.retire_other_versions(self.id, info.key, info.etag)

    def invalidate(self, key: str) -> None:
        """Forget a key: its metadata, every listing that could show it (its ancestors)
        and its cached blocks. Readers already under way finish their version."""
        self.meta.invalidate(key)
        self.engine.blocks.retire_object(self.id, key)

    def object_changed(self, key: str, etag: str) -> None:
        """A read found ``key`` no longer at ``etag``: forget that version."""
        known = self.meta.info(key)
        if not isinstance(known, ObjectInfo) or known.etag == etag:
            self.meta.invalidate(key)
        self.engine.blocks.retire_object(self.id, key, etag)

    # ---- reads -------------------------------------------------------------------------
    async def open(self, key: str, info: ObjectInfo | None = None) -> OpenRead:
        """Start a read of the current version of ``key`` (of ``info`` when given).

        Without ``info`` this costs at most one store request, a ranged GET of the first
        block, whose answer also brings the metadata; none when the metadata and the first
        block are cached. Concurrent opens of one key share that GET.
        """
        if info is not None:
            return OpenRead(self, info)
        engine = self.engine
        known = self.meta.info(key)
        if isinstance(known, Missing):
            engine.counters.metadata_hits += 1
            raise NotFound(f"no object {key!r}")
        if isinstance(known, ObjectInfo):
            if known.size == 0:
                engine.counters.metadata_hits += 1
                return OpenRead(self, known)
            block = engine.blocks.lookup(self.block_key(key, known.etag, 0))
            if block is not None:
                engine.counters.metadata_hits += 1
                return OpenRead(self, known, block)
        opening = self._opening.get(key)
        if opening is None:
            opening = _Opening()
            opening.task = engine.spawn(self._open_first(key, opening))
            self._opening[key] = opening
        task = opening.task
        assert task is not None
        opening.waiters += 1
        try:
            found, block = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and not task.cancelled() and task.exception() is None:
                _, block = task.result()  # the pin handed to this caller
                if block is not None:
                    engine.blocks.unpin(block)
            else:
                opening.waiters -= 1
                if opening.waiters == 0:
                    task.cancel()
            raise
        return OpenRead(self, found, block)

    async def _open_first(self, key: str, opening: _Opening) -> tuple[ObjectInfo, Block | None]:
        """GET the first block without If-Match (the etag is not known yet) and learn the
        metadata from the answer; the body then streams into block 0 in the background.
        Returns block 0 pinned once for every caller waiting (None for an empty object)."""
        engine = self.engine
        cache, budget = engine.blocks, engine.budget
        try:
            charge = await budget.acquire(engine.tuning.block_size)
            try:
                result = await self._first_get(key)
            except NotFound:
                budget.release(charge)
                self.meta.put_missing(key)
                raise
            except BaseException:
                budget.release(charge)
                raise
            # From here to the return nothing awaits: pins are handed out atomically.
            info = result.info
            self.meta.put_info(info)
            cache.retire_other_versions(self.id, key, info.etag)
            size = min(engine.tuning.block_size, info.size)
            block_key = self.block_key(key, info.etag, 0)
            block = cache.lookup(block_key) if size else None
            if block is not None or size == 0:
                budget.release(charge)
                self.slots.release()
                engine.spawn(result.aclose())
            else:
                if charge > size:
                    budget.release(charge - size)
                block = cache.create(block_key, 0, size, min(charge, size))
                Fetch(self, key, info.etag, [block]).start_task(result, holding=True)
            if block is not None:
                if opening.waiters > 0:
                    block.pins += opening.waiters - 1  # create/lookup gave one
                else:
                    cache.unpin(block)  # everyone gave up: the fetch is an orphan
            return info, block
        finally:
            if self._opening.get(key) is opening:
                del self._opening[key]

    async def _first_get(self, key: str) -> GetResult:
        """``GET [0, block)``; returns with a connection slot held for the body."""
        engine = self.engine
        failures = 0
        while True:
            await self.slots.acquire()
            try:
                engine.counters.store_gets += 1
                return await self.store.get(key, 0, engine.tuning.block_size)
            except Upstream:
                self.slots.release()
                failures += 1
                if failures > engine.tuning.retries:
                    raise
                engine.counters.retries += 1
            except BaseException:
                self.slots.release()
                raise
            await asyncio.sleep(backoff_delay(failures, engine.tuning))


def _store_connections(store: ObjectStore) -> int:
    settings = getattr(store, "settings", None)
    if isinstance(settings, StoreSettings):
        return settings.max_connections
    return DEFAULT_CONNECTIONS


class Engine:
    def __init__(self, settings: EngineSettings, tuning: Tuning | None = None) -> None:
        self.settings = settings
        self.budget = MemoryBudget(settings.memory_target_bytes)
        tuning = tuning or Tuning.from_settings(settings)
        if tuning.block_size > self.budget.limit:
            tuning = replace(tuning, block_size=self.budget.limit)
        self.tuning = tuning
        self.counters = Counters(budget=self.budget)
        self.blocks = BlockCache(
            self.budget, int(self.budget.limit * tuning.cache_share), self.counters
        )
        self.fetch_slots = asyncio.Semaphore(tuning.max_fetches)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)

    def view(self, store: ObjectStore, max_connections: int | None = None) -> StoreView:
        """The engine's face for one store; ``max_connections`` defaults to the store's
        own setting (``StoreSettings.max_connections``)."""
        return StoreView(self, store, max_connections)

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
        for task in list(self._tasks):
            task.cancel()
        await self.wait_idle()
        self.blocks.clear()

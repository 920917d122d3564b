"""StoreView: the only door to a store, for reads, listings and writes.

Each store gets a ``StoreView`` (``Engine.view(store)``) with its own identity in block
keys, its own connection limit and its metadata cache. The layers above only use the
view: ``stat``, ``open``/``OpenRead.iter_range``, ``list_page``, ``list_tree_page`` or
``tree_pages`` to read, and ``put``, ``copy``, ``delete``, ``delete_many``,
``write_stream`` to write. Every write keeps the caches true at once: the written key's
metadata is learnt (or forgotten), its negative entry, every listing page that could show
it and the blocks of its other versions are dropped; so the next PROPFIND, listing or GET
through this gateway sees it. The write is then published to every other process's caches
(``gateway.engine.events``), which drop what they knew of the key at once.

A create-only write (``create_only``) commits under the engine's write guard, with the
store's own create-only condition: of two creators of one new name, exactly one wins and
the other gets ``Exists`` (412), whatever the store enforces (``gateway.engine.guard``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager, nullcontext
from dataclasses import replace

from gateway.engine.blocks import BlockKey
from gateway.engine.context import ReadContext, Shared, Slots
from gateway.engine.fetch import Fetch
from gateway.engine.metacache import MetadataCache, Missing
from gateway.engine.opening import LeaderGone, Opened, Opening
from gateway.engine.reader import OpenRead
from gateway.engine.tuning import backoff_delay
from gateway.engine.upload import MAX_IN_FLIGHT, MiB, write_stream
from gateway.errors import Exists, NotFound, Upstream
from gateway.storage.asof import MAX_VERSIONS, versions_of
from gateway.storage.base import GetResult, ListPage, ObjectInfo, ObjectStore, ObjectVersion
from gateway.storage.mtime import with_mtime

DEFAULT_CONNECTIONS = 64  # a store without a connection pool (local folder, list of shares)
# An object this small is read by the first GET's caller before open returns: a fetch
# task of its own and a wait on block 0 cost more than its bytes take to arrive.
INLINE_BODY = 64 * 1024


class StoreView:
    def __init__(
        self, engine: Shared, store: ObjectStore, max_connections: int | None = None
    ) -> None:
        self.engine = engine
        self.store = store  # the engine's own: nothing above it touches the store
        self.id = engine.next_view_id()
        self._max_connections = max_connections
        connections = max_connections or DEFAULT_CONNECTIONS
        # Ranged GETs may use three quarters of the store's connections: HEADs, listings
        # and uploads keep the rest instead of queueing behind read-ahead.
        slots = Slots(
            asyncio.Semaphore(max(1, connections - connections // 4)), engine.fetch_slots
        )
        self.ctx = ReadContext(engine, store, self.id, slots, self.object_changed)
        self.meta = MetadataCache(engine.settings.metadata_ttl)
        # Guarded names are per store: two shares over one bucket guard the same keys.
        self._guard_scope = store.description
        self._opening: dict[str, Opening] = {}
        engine.events.register(self)

    def __repr__(self) -> str:
        return f"StoreView({self.store.description})"

    @property
    def description(self) -> str:
        """The store, for people (and lock URLs): bucket and prefix, or folder."""
        return self.store.description

    def sibling(self, store: ObjectStore) -> StoreView:
        """A view of another store on the same engine (same budget and block cache)."""
        return StoreView(self.engine, store, self._max_connections)

    def block_key(self, key: str, etag: str, index: int) -> BlockKey:
        return self.ctx.block_key(key, etag, index)

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
        info = self._timed(info)
        self.meta.put_info(info)
        return info

    # ---- stored modification times (gateway.engine.mtimes) -----------------------------
    @property
    def _native_times(self) -> bool:
        """The store keeps a file's time itself (a local folder): nothing to look up."""
        return bool(getattr(self.store, "native_mtime", False))

    def _timed(self, info: ObjectInfo) -> ObjectInfo:
        """A HEAD's answer, taught to the index; a placeholder shows a time given to it."""
        index = self.engine.mtimes
        index.learn(self.store.description, info.key, info.etag, info.mtime)
        if info.mtime is None:
            known, mtime = index.lookup(self.store.description, info.key, info.etag)
            return with_mtime(info, mtime if known else None)
        return info

    async def mtime_of(self, info: ObjectInfo) -> float | None:
        """The time stored or recorded for this version of the object, if any."""
        if info.mtime is not None:
            return info.mtime
        return await self.engine.mtimes.fetch(self.store.description, info.key, info.etag)

    async def give_mtime(self, info: ObjectInfo, mtime: float) -> None:
        """Record a time for this version (a placeholder's, until the PUT that fills it)."""
        await self.engine.mtimes.record(self.store.description, info.key, info.etag, mtime)
        self.meta.invalidate(info.key)

    async def _with_times(self, page: ListPage) -> ListPage:
        if self._native_times or not page.objects:
            return page
        times = await self.engine.mtimes.fill(self.store.description, page.objects)
        if all(mtime is None or mtime == info.mtime
               for info, mtime in zip(page.objects, times, strict=True)):
            return page  # nothing to show: the cached page itself
        return replace(page, objects=tuple(
            with_mtime(info, mtime) for info, mtime in zip(page.objects, times, strict=True)
        ))

    async def list_page(
        self, prefix: str, token: str | None = None, max_keys: int = 1000
    ) -> ListPage:
        counters = self.engine.counters
        page = self.meta.page(prefix, token, max_keys)
        if page is not None:
            counters.metadata_hits += 1
            return await self._with_times(page)
        counters.metadata_misses += 1
        counters.store_lists += 1
        page = await self.store.list_page(prefix, "/", token, max_keys)
        self.meta.put_page(prefix, token, max_keys, page)
        return await self._with_times(page)

    async def list_tree_page(
        self, prefix: str, token: str | None = None, max_keys: int = 1000
    ) -> ListPage:
        """A page of every key under ``prefix`` (no delimiter), fresh from the store: tree
        operations act on what is there now, never on a cached listing."""
        return await self.store.list_page(prefix, None, token, max_keys)

    async def tree_pages(self, prefix: str) -> AsyncIterator[ListPage]:
        """Every ``list_tree_page`` under ``prefix`` in order, one listing in flight."""
        token: str | None = None
        while True:
            page = await self.list_tree_page(prefix, token)
            yield page
            if not page.next_token:
                return
            token = page.next_token

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

    def forget(self, key: str, prefix: bool) -> None:
        """Another process wrote ``key`` (with ``prefix``: keys under it): drop what is
        known of it here."""
        if prefix:
            self.meta.invalidate_prefix(key)
        else:
            self.invalidate(key)

    def forget_everything(self) -> None:
        """Events may have been missed: ask the store again about everything."""
        self.meta.clear()

    async def _publish(self, key: str, *, prefix: bool = False) -> None:
        await self.engine.events.publish(self, key, prefix=prefix)

    def object_changed(self, key: str, etag: str) -> None:
        """A read found ``key`` no longer at ``etag``: forget that version."""
        known = self.meta.info(key)
        if not isinstance(known, ObjectInfo) or known.etag == etag:
            self.meta.invalidate(key)
        self.engine.blocks.retire_object(self.id, key, etag)

    # ---- writes ------------------------------------------------------------------------
    def _written(self, info: ObjectInfo) -> ObjectInfo:
        """A write through the gateway made ``info`` the current version of its key."""
        self.invalidate(info.key)
        self.remember(info)
        self.engine.mtimes.learn(self.store.description, info.key, info.etag, info.mtime)
        return info

    async def _timed_write(self, info: ObjectInfo, mtime: float | None) -> None:
        """Write a given time through to the state store, for listings."""
        if mtime is not None and not self._native_times:
            await self.engine.mtimes.record(self.store.description, info.key, info.etag,
                                            mtime)

    @contextmanager
    def _creating(self, key: str) -> Iterator[None]:
        """A create-only write found the key taken: what the cache said is stale."""
        try:
            yield
        except Exists:
            self.invalidate(key)
            raise

    def _commit_guard(self, key: str, create_only: bool
                      ) -> AbstractAsyncContextManager[None]:
        """Held around a create's commit: one creator of ``key`` at a time."""
        if not create_only:
            return nullcontext()
        return self.engine.write_guard.guard(self._guard_scope, key)

    async def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        *,
        create_only: bool = False,
        mtime: float | None = None,
    ) -> ObjectInfo:
        """One PutObject; ``create_only`` refuses (Exists) if the key exists; ``mtime``
        is stored as its modification time."""
        with self._creating(key):
            async with self._commit_guard(key, create_only):
                info = await self.store.put(key, data, content_type, if_none_match=create_only,
                                            mtime=mtime)
        self._written(info)
        await self._timed_write(info, mtime)
        await self._publish(key)
        return info

    async def write_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        expected_size: int | None = None,
        create_only: bool = False,
        part_size: int | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
        mtime: float | None = None,
    ) -> ObjectInfo:
        """Write a stream to ``key`` (``gateway.engine.upload``), visible only when whole;
        parts sized to fit the engine's memory budget (TooLarge when none can)."""
        with self._creating(key):
            info = await write_stream(
                self.store,
                self.engine.budget,
                key,
                chunks,
                part_size=part_size or self.engine.settings.write_part_size * MiB,
                content_type=content_type,
                expected_size=expected_size,
                create_only=create_only,
                max_in_flight=max_in_flight,
                commit_guard=self._commit_guard(key, create_only),
                mtime=mtime,
            )
        self._written(info)
        await self._timed_write(info, mtime)
        await self._publish(key)
        return info

    async def copy(self, src: str, dst: str, *, create_only: bool = False) -> ObjectInfo:
        """A server-side copy of ``src`` to ``dst``; ``create_only`` refuses (Exists) if
        ``dst`` exists."""
        with self._creating(dst):
            async with self._commit_guard(dst, create_only):
                info = await self.store.copy(src, dst, if_none_match=create_only)
        self._written(info)
        await self._publish(dst)
        return info

    async def delete(self, key: str) -> None:
        await self.store.delete(key)
        self.invalidate(key)
        await self._publish(key)

    async def delete_many(self, keys: list[str]) -> dict[str, str]:
        """One DeleteObjects call; returns the keys the store refused, with its reason.
        Every key is forgotten, whatever happened: the store is asked again next time."""
        try:
            return await self.store.delete_many(keys)
        finally:
            for key in keys:
                self.invalidate(key)
            if keys:  # one event for the batch: what lies under the keys' common prefix
                common = min(keys)[: _shared_length(min(keys), max(keys))]
                await self._publish(common, prefix=len(keys) > 1)

    # ---- reads -------------------------------------------------------------------------
    async def open(self, key: str, info: ObjectInfo | None = None) -> OpenRead:
        """Start a read of the current version of ``key`` (of ``info`` when given).

        Without ``info`` this costs at most one store request, a ranged GET of the first
        block, whose answer also brings the metadata; none when the metadata and the first
        block are cached. Concurrent opens of one key share that GET, sent by the first
        of them.
        """
        if info is not None:
            return OpenRead(self.ctx, info)
        engine = self.engine
        known = self.meta.info(key)
        if isinstance(known, Missing):
            engine.counters.metadata_hits += 1
            raise NotFound(f"no object {key!r}")
        if isinstance(known, ObjectInfo):
            if known.size == 0:
                engine.counters.metadata_hits += 1
                return OpenRead(self.ctx, known)
            block = engine.blocks.lookup(self.block_key(key, known.etag, 0))
            if block is not None:
                engine.counters.metadata_hits += 1
                return OpenRead(self.ctx, known, block)
        disk = engine.blocks.disk
        if disk is not None and disk.holds(self.store.description, key):
            # Blocks of the key are on disk: learn the etag that names them (a HEAD,
            # unless known) instead of GETting block 0 again.
            return OpenRead(self.ctx, known if isinstance(known, ObjectInfo)
                            else await self.stat(key))
        while True:
            opening = self._opening.get(key)
            if opening is None:
                return OpenRead(self.ctx, *await self._lead(key))
            opened = await opening.follow(self.engine.blocks.unpin)
            if opened is not None:
                return OpenRead(self.ctx, *opened)
            # The leader's request was cancelled (its client left): open again.

    async def _lead(self, key: str) -> Opened:
        """Send the first GET (``opening.py``); followers learn its outcome."""
        opening = Opening()
        self._opening[key] = opening
        try:
            opened = await self._open_first(key, opening)
        except asyncio.CancelledError:
            opening.settle(None, LeaderGone())
            raise
        except BaseException as e:
            opening.settle(None, e)
            raise
        finally:
            del self._opening[key]  # later opens find the cache or lead a GET of their own
        opening.settle(opened, None)
        return opened

    async def _open_first(self, key: str, opening: Opening) -> Opened:
        """GET the first block without If-Match (the etag is not known yet) and learn the
        metadata from the answer; the body then streams into block 0 in the background (a
        small object's is read here, so block 0 is complete when this returns).
        Returns block 0 pinned once for every caller waiting (None for an empty object)."""
        engine = self.engine
        cache, budget = engine.blocks, engine.budget
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
        # Nothing awaits from here to the return but a small body's read, under the
        # creator's pin: pins are handed out atomically.
        info = result.info
        self.meta.put_info(info)
        cache.retire_other_versions(self.id, key, info.etag)
        size = min(engine.tuning.block_size, info.size)
        block_key = self.block_key(key, info.etag, 0)
        block = cache.lookup(block_key) if size else None
        if block is not None or size == 0:
            budget.release(charge)
            self.ctx.slots.release()
            engine.spawn(result.aclose())
        else:
            if charge > size:
                budget.release(charge - size)
            block = cache.create(block_key, 0, size, min(charge, size))
            fetch = Fetch(self.ctx, key, info.etag, [block])
            if reads_inline(info.size, engine.tuning.block_size):
                try:
                    await fetch.run_here(result, holding=True)
                except BaseException:
                    cache.unpin(block)  # the leader was cancelled: followers open again
                    raise
            else:
                fetch.start_task(result, holding=True)
        if block is not None:
            # No waiter left: the fetch becomes an orphan and is cancelled.
            cache.hand_off(block, opening.waiters)
        return info, block

    async def _first_get(self, key: str) -> GetResult:
        """``GET [0, block)``; returns with a connection slot held for the body."""
        engine = self.engine
        failures = 0
        while True:
            await self.ctx.slots.acquire()
            try:
                engine.counters.store_gets += 1
                return await self.store.get(key, 0, engine.tuning.block_size)
            except Upstream:
                self.ctx.slots.release()
                failures += 1
                if failures > engine.tuning.retries:
                    raise
                engine.counters.retries += 1
            except BaseException:
                self.ctx.slots.release()
                raise
            await asyncio.sleep(backoff_delay(failures, engine.tuning))


    # ---- versions (a store that keeps none raises NotSupported) -------------------------
    async def stat_version(self, key: str, version_id: str) -> ObjectInfo:
        """HEAD of one version of ``key``, not cached: it is asked for by id, rarely twice."""
        self.engine.counters.store_heads += 1
        return await self.store.head_version(key, version_id)

    def open_version(self, info: ObjectInfo, version_id: str) -> OpenRead:
        """A read of the version ``info`` describes: every ranged GET names it, so the read
        never mixes in another version."""
        return OpenRead(self.ctx, info, version_id=version_id)

    async def versions(self, key: str, limit: int = MAX_VERSIONS) -> list[ObjectVersion]:
        """The versions and delete markers of ``key``, newest first, fresh from the store."""
        self.engine.counters.store_lists += 1
        return await versions_of(self.store, key, limit)


def reads_inline(size: int, block_size: int) -> bool:
    """The whole object fits in block 0 and is small: read it before open returns."""
    return size <= min(block_size, INLINE_BODY)


def _shared_length(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` share (of the least and greatest keys
    of a batch: every key of it shares them)."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


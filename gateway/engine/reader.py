"""One read of one object version: the mechanics of read-ahead.

``OpenRead.iter_range(start, end)`` yields exactly the bytes ``[start, end)`` of the
version named by ``info.etag``. It walks the blocks of the range, keeping the blocks of
its read-ahead window pinned. The block it needs now may wait for memory; read-ahead
only takes memory that is free at once (``try_acquire``). Read-ahead is topped up only
when the consumer takes bytes, so a client slower than the store holds at most one
window: the store waits for the client, no queue grows.

What to read ahead, when, and what to keep is decided by the reader's ``ReadAhead``
(``gateway.engine.readahead``); this module pins, queues and starts fetches.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator
from types import TracebackType

from gateway.engine.blocks import Block, BlockKey
from gateway.engine.context import ReadContext
from gateway.engine.fetch import Fetch, disk_id, from_disk
from gateway.engine.readahead import ReadAhead, split_runs
from gateway.engine.tuning import block_span
from gateway.errors import GatewayError
from gateway.storage.base import ObjectInfo


class OpenRead:
    """A read of the version ``info`` describes; every range fetched carries its etag,
    and its version id when the read names one (``StoreView.open_version``)."""

    def __init__(self, ctx: ReadContext, info: ObjectInfo, first: Block | None = None,
                 version_id: str | None = None) -> None:
        self.ctx = ctx
        self.info = info
        self.version_id = version_id
        self._first = first  # block 0, pinned by open() when it fetched it
        self.policy = ReadAhead(ctx.tuning, ctx.budget.limit)
        self._block = self.policy.block
        self._queues: list[deque[Block]] = []  # blocks pinned by running iter_range calls
        self._closed = False

    def __repr__(self) -> str:
        return f"OpenRead({self.info.key!r} {self.info.etag} window={self.window})"

    @property
    def window(self) -> int:
        """The current read-ahead window in bytes."""
        return self.policy.window

    async def __aenter__(self) -> OpenRead:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Give back every block this read holds; in-flight read-ahead nobody else waits
        for is cancelled."""
        self._closed = True
        cache = self.ctx.blocks
        first, self._first = self._first, None
        if first is not None:
            cache.unpin(first)
        for queue in self._queues:
            while queue:
                cache.unpin(queue.popleft())
        self._queues.clear()

    async def iter_range(self, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Yield exactly the bytes ``[start, end)`` of the object version in ``info``."""
        if self._closed:
            raise RuntimeError("the read is closed")
        start, end = max(0, start), min(end, self.info.size)
        policy, ctx = self.policy, self.ctx
        if policy.seek(start, end) and policy.wants_exact(
            start, end, first_held=self._first is not None, live=self._live
        ):
            async for exact in self._read_exact(start, end):
                yield exact
            return
        cache = ctx.blocks
        queue: deque[Block] = deque()
        front = start // self._block  # next block to pin
        first, self._first = self._first, None
        if first is not None:
            if front == 0 and start < end:
                queue.append(first)
                front = 1
            else:
                cache.unpin(first)
        if start >= end:
            return
        self._queues.append(queue)
        ident = (self.info.key, self.info.etag)
        ctx.reading[ident] += 1
        shared = ctx.shared
        shared.reads += 1
        pos = start
        try:
            while pos < end:
                policy.readers(shared.reads)
                target = policy.target(pos, end)
                if policy.top_up(pinned=len(queue), front=front, target=target, end=end):
                    front = await self._extend(queue, front, target)
                block = queue[0]
                lo, hi = pos - block.start, min(end, block.end) - block.start
                while lo < hi:
                    piece = block.piece(lo, hi)
                    if piece is None:
                        await block.wait()
                        continue
                    lo += len(piece)
                    yield piece
                    # Let go of the bytes now: the block's reservation ends at its unpin,
                    # and a reference kept while the next block waits for memory would
                    # hold them outside the budget.
                    del piece
                    if self._closed:
                        raise RuntimeError("the read was closed while a range was read")
                queue.popleft()
                stop = block.start + hi
                keep = policy.consumed(block.index, pos, stop, shared=ctx.reading[ident] > 1)
                cache.unpin(block, keep)
                pos = stop
        except GatewayError:
            ctx.counters.aborts += 1
            raise
        finally:
            shared.reads -= 1
            ctx.reading[ident] -= 1
            if ctx.reading[ident] <= 0:
                del ctx.reading[ident]
            if queue in self._queues:
                self._queues.remove(queue)
            while queue:
                cache.unpin(queue.popleft())

    # ---- small random reads ----------------------------------------------------------
    def _live(self, index: int) -> bool:
        """Block ``index`` of this version is cached (in memory or on disk) or in flight:
        reading it whole costs the store nothing."""
        blocks = self.ctx.blocks
        if blocks.get(self._key(index)) is not None:
            return True
        return blocks.disk is not None and blocks.disk.has(
            disk_id(self.ctx, self.info.key, self.info.etag, index))

    async def _read_exact(self, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Fetch ``[start, end)`` into a private block (never cached, so it cannot be
        mistaken for a whole one) with the usual If-Match, retries and budget."""
        ctx = self.ctx
        charge = await ctx.budget.acquire(end - start)
        block = Block(self._key(-1), start, end - start, charge)
        block.pins, block.retired = 1, True  # its charge returns when its reader is done
        Fetch(ctx, self.info.key, self.info.etag, [block], self.version_id).start_task()
        ctx.counters.exact_reads += 1
        try:
            lo = 0
            while lo < block.size:
                got = block.piece(lo, block.size)
                if got is None:
                    await block.wait()
                    continue
                lo += len(got)
                yield got
        except GatewayError:
            ctx.counters.aborts += 1
            raise
        finally:
            ctx.blocks.unpin(block, keep=False)
        self.policy.read_exact(end)

    # ---- pinning and fetching ----------------------------------------------------------
    async def _extend(self, queue: deque[Block], front: int, target: int) -> int:
        """Pin blocks ``[front, target)`` in order, creating and fetching the missing ones.
        Returns the new front (less than target when the budget refused read-ahead)."""
        cache, budget = self.ctx.blocks, self.ctx.budget
        new: list[Block] = []
        index = front
        while index < target:
            key = self._key(index)
            block = cache.lookup(key)
            if block is None:
                start, stop = block_span(index, self.info.size, self._block)
                if not queue:
                    # The block the reader needs now: wait for memory.
                    charge = await budget.acquire(stop - start)
                    block = cache.lookup(key)  # someone may have started it meanwhile
                    if block is not None:
                        budget.release(charge)
                else:
                    charge = budget.try_acquire(stop - start)
                    if not charge:
                        self.policy.refused()
                        break
                if block is None:
                    block = cache.create(key, start, stop - start, charge)
                    new.append(block)
            queue.append(block)
            index += 1
        self._fetch(new)
        return index

    def _fetch(self, blocks: list[Block]) -> None:
        blocks = from_disk(self.ctx, self.info.key, self.info.etag, blocks, self.version_id)
        if not blocks:
            return
        by_index = {block.index: block for block in blocks}
        for run in split_runs(sorted(by_index), self.policy.per_request()):
            fetch = Fetch(self.ctx, self.info.key, self.info.etag, [by_index[i] for i in run],
                          self.version_id)
            fetch.start_task()

    def _key(self, index: int) -> BlockKey:
        return self.ctx.block_key(self.info.key, self.info.etag, index)

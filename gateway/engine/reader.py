"""One read of one object version: sequential detection and read-ahead.

``OpenRead.iter_range(start, end)`` yields exactly the bytes ``[start, end)`` of the
version named by ``info.etag``. It walks the blocks of the range, keeping the blocks of
its read-ahead window pinned. The block it needs now may wait for memory; read-ahead
only takes memory that is free at once (``try_acquire``), and the window halves when
it is refused. Read-ahead is topped up only when the consumer takes bytes, so a client
slower than the store holds at most one window: the store waits for the client, no
queue grows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import TYPE_CHECKING

from gateway.engine.blocks import Block, BlockKey
from gateway.engine.fetch import Fetch
from gateway.engine.tuning import (
    block_count,
    block_span,
    grow,
    part_for,
    shrink,
    split_runs,
    window_cap,
)
from gateway.errors import GatewayError
from gateway.storage.base import ObjectInfo

if TYPE_CHECKING:
    from gateway.engine.core import StoreView


class OpenRead:
    """A read of the version ``info`` describes; every range fetched carries its etag."""

    def __init__(self, view: StoreView, info: ObjectInfo, first: Block | None = None) -> None:
        self.view = view
        self.info = info
        self._first = first  # block 0, pinned by open() when it fetched it
        tuning = view.engine.tuning
        self._block = tuning.block_size
        self._cap = window_cap(tuning, view.engine.budget.limit)
        self._window = self._block
        self._since_growth = 0  # bytes consumed since the window last grew
        self._sequential = 0  # bytes consumed since the last seek
        self._next = 0  # where a sequential continuation starts
        self._queues: list[deque[Block]] = []  # blocks pinned by running iter_range calls
        self._closed = False

    def __repr__(self) -> str:
        return f"OpenRead({self.info.key!r} {self.info.etag} window={self._window})"

    @property
    def window(self) -> int:
        """The current read-ahead window in bytes."""
        return self._window

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
        cache = self.view.engine.blocks
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
        if start != self._next:
            self._seek()
            if self._wants_exact(start, end):
                async for exact in self._read_exact(start, end):
                    yield exact
                return
        cache = self.view.engine.blocks
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
        self.view.reading[ident] += 1
        pos = start
        try:
            while pos < end:
                target = self._target(pos, end)
                if not queue or target - front >= self._batch() or (
                    target > front and target == block_count(end, self._block)
                ):
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
                    if self._closed:
                        raise RuntimeError("the read was closed while a range was read")
                queue.popleft()
                self._consumed(block, ident, block.start + hi - pos)
                pos = self._next = block.start + hi
        except GatewayError:
            self.view.engine.counters.aborts += 1
            raise
        finally:
            self.view.reading[ident] -= 1
            if self.view.reading[ident] <= 0:
                del self.view.reading[ident]
            if queue in self._queues:
                self._queues.remove(queue)
            while queue:
                cache.unpin(queue.popleft())

    # ---- small random reads ----------------------------------------------------------
    def _wants_exact(self, start: int, end: int) -> bool:
        """A short read after a seek fetches just its bytes: rounding it up to whole
        blocks would cost a 64 KiB range read a 1 MiB transfer. Blocks already live
        (cached or in flight) are used instead, and so is block 0 when open() holds it."""
        if end - start >= self._block or start >= end:
            return False
        if self._first is not None and start < self._block:
            return False
        cache = self.view.engine.blocks
        first, last = start // self._block, (end - 1) // self._block
        return all(cache.get(self._key(i)) is None for i in range(first, last + 1))

    async def _read_exact(self, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Fetch ``[start, end)`` into a private block (never cached, so it cannot be
        mistaken for a whole one) with the usual If-Match, retries and budget."""
        engine = self.view.engine
        charge = await engine.budget.acquire(end - start)
        block = Block(self._key(-1), start, end - start, charge)
        block.pins, block.retired = 1, True  # its charge returns when its reader is done
        Fetch(self.view, self.info.key, self.info.etag, [block]).start_task()
        engine.counters.exact_reads += 1
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
            engine.counters.aborts += 1
            raise
        finally:
            engine.blocks.unpin(block, keep=False)
        self._next = end

    # ---- the window ------------------------------------------------------------------
    def _seek(self) -> None:
        self._window = self._block
        self._since_growth = 0
        self._sequential = 0

    def _target(self, pos: int, end: int) -> int:
        """One past the last block the window wants pinned."""
        return block_count(min(pos + self._window, end), self._block)

    def _batch(self) -> int:
        """Top up read-ahead when this many blocks are missing: one part's worth, so the
        window is refilled by part-sized GETs rather than a GET per consumed block."""
        return part_for(self._window, self.view.engine.tuning) // self._block

    def _consumed(self, block: Block, ident: tuple[str, str], n: int) -> None:
        # Drop-behind: a streaming reader alone on an object does not fill the cache
        # with bytes nobody will ask for again (block 0 is kept: re-opening the object
        # then costs no request).
        keep = (
            self._sequential < self.view.engine.tuning.streaming_after
            or block.index == 0
            or self.view.reading[ident] > 1
        )
        self.view.engine.blocks.unpin(block, keep)
        self._sequential += n
        self._since_growth += n
        if self._since_growth >= self._window:
            self._window = grow(self._window, self._cap)
            self._since_growth = 0

    async def _extend(self, queue: deque[Block], front: int, target: int) -> int:
        """Pin blocks ``[front, target)`` in order, creating and fetching the missing ones.
        Returns the new front (less than target when the budget refused read-ahead)."""
        engine = self.view.engine
        cache, budget = engine.blocks, engine.budget
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
                        self._window = shrink(self._window, self._block)
                        self._since_growth = 0
                        break
                if block is None:
                    block = cache.create(key, start, stop - start, charge)
                    new.append(block)
            queue.append(block)
            index += 1
        self._fetch(new)
        return index

    def _fetch(self, blocks: list[Block]) -> None:
        if not blocks:
            return
        by_index = {block.index: block for block in blocks}
        per_request = max(1, part_for(self._window, self.view.engine.tuning) // self._block)
        for run in split_runs(sorted(by_index), per_request):
            fetch = Fetch(self.view, self.info.key, self.info.etag, [by_index[i] for i in run])
            fetch.start_task()

    def _key(self, index: int) -> BlockKey:
        return self.view.block_key(self.info.key, self.info.etag, index)

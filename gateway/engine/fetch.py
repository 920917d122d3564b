"""One ranged GET that fills a run of consecutive blocks, with retries.

Every attempt after the first byte of a read carries ``If-Match: <etag>``; a changed (or
deleted) object fails the blocks with ``ObjectChanged`` and makes the view forget that
version. A transient failure (``Upstream``, ``Unavailable``, a body cut short) resumes
the range from the first byte not yet received, a bounded number of times with
exponential backoff and jitter; then the blocks fail with the last error, and every
reader waiting on them raises it (the HTTP layer aborts the connection: a response never
ends cleanly with bytes missing).

With a disk tier (``--cache``), every block a fetch completes is handed to its background
writer, and ``DiskLoad`` fills a block from disk instead of the store; a block the disk
cannot serve intact is fetched as usual.
"""

from __future__ import annotations

import asyncio

from gateway.engine.blockfile import BlockId
from gateway.engine.blocks import Block
from gateway.engine.context import ReadContext
from gateway.engine.tuning import backoff_delay
from gateway.errors import NotFound, ObjectChanged, Unavailable, Upstream
from gateway.storage.base import GetResult


class FetchCancelled(Unavailable):
    """The fetch was dropped because no reader waited for it any more."""

    default_message = "read-ahead cancelled"


class Fetch:
    """Fills ``blocks`` (consecutive, one object version) from one ranged GET; with
    ``version_id`` every GET names that version."""

    def __init__(self, ctx: ReadContext, key: str, etag: str, blocks: list[Block],
                 version_id: str | None = None) -> None:
        self.ctx = ctx
        self.key = key
        self.etag = etag
        self.version_id = version_id
        self.blocks = blocks
        self.start = blocks[0].start
        self.end = blocks[-1].end
        self.offset = self.start  # first byte not yet received
        self._current = 0  # index in blocks of the block being filled
        self.task: asyncio.Task[None] | None = None
        self._opened: GetResult | None = None
        self._holding = False
        for block in blocks:
            block.fetch = self

    def __repr__(self) -> str:
        return f"Fetch({self.key!r} [{self.start}, {self.end}) at {self.offset})"

    def start_task(self, opened: GetResult | None = None, holding: bool = False) -> None:
        """Run in the background; ``opened`` is a GET already answered for this range
        (its connection slot held when ``holding``)."""
        self._opened, self._holding = opened, holding
        self.task = self.ctx.spawn(self.run())
        self.task.add_done_callback(self._never_ran)

    async def run_here(self, opened: GetResult, holding: bool = False) -> None:
        """Run in the caller's task, not in one of its own (a small body: the task would
        cost more than the read). The caller holds a pin on the blocks meanwhile."""
        self._opened, self._holding = opened, holding
        await self.run()

    def _never_ran(self, task: asyncio.Task[None]) -> None:
        """A task cancelled before its first step never runs its body: hand back what
        it was given."""
        opened, self._opened = self._opened, None
        if opened is None:
            return
        if self._holding:
            self.ctx.slots.release()
        self.ctx.spawn(opened.aclose())
        self._fail(FetchCancelled())

    def orphaned(self) -> bool:
        """True when no block still to be filled is wanted by any reader."""
        return all(block.pins == 0 for block in self.blocks[self._current :] if not block.done)

    def cancel(self) -> None:
        """Stop fetching: the blocks not yet complete become unfindable at once (so nobody
        new waits on them) and fail when the task notices."""
        for block in self.blocks[self._current :]:
            if not block.done:
                self.ctx.blocks.retire(block)
        if self.task is not None:
            self.task.cancel()

    # ---- the task ------------------------------------------------------------------
    async def run(self) -> None:
        opened, self._opened = self._opened, None
        holding = self._holding
        ctx = self.ctx
        counters = ctx.counters
        tuning = ctx.tuning
        failures = 0
        try:
            while self.offset < self.end:
                if not holding:
                    await ctx.slots.acquire()
                holding = False
                retry = False
                try:
                    result = opened
                    opened = None
                    if result is None:
                        counters.store_gets += 1
                        result = await self._get()
                    counters.request_started()
                    try:
                        await self._receive(result)
                    finally:
                        counters.request_ended()
                        await result.aclose()
                except (NotFound, ObjectChanged) as exc:
                    raise ObjectChanged(
                        f"{self.key!r} was replaced or deleted during the read"
                    ) from exc
                except Upstream:  # Unavailable included: transient, retry the rest
                    failures += 1
                    if failures > tuning.retries:
                        raise
                    counters.retries += 1
                    retry = True
                finally:
                    ctx.slots.release()
                if retry:
                    await asyncio.sleep(backoff_delay(failures, tuning))
        except ObjectChanged as exc:
            counters.changed += 1
            ctx.object_changed(self.key, self.etag)
            self._fail(exc)
        except asyncio.CancelledError:
            self._fail(FetchCancelled())
            raise
        except BaseException as exc:
            self._fail(exc)
            if not isinstance(exc, Exception):
                raise

    async def _get(self) -> GetResult:
        store = self.ctx.store
        if self.version_id is not None:
            return await store.get_version(
                self.key, self.version_id, self.offset, self.end, if_match=self.etag)
        return await store.get(self.key, self.offset, self.end, if_match=self.etag)

    async def _receive(self, result: GetResult) -> None:
        if result.info.etag != self.etag:
            raise ObjectChanged(f"{self.key!r} changed")
        if result.start != self.offset or result.end != self.end:
            raise Upstream(
                f"the store answered bytes [{result.start}, {result.end}) of {self.key!r} "
                f"for [{self.offset}, {self.end})"
            )
        counters = self.ctx.counters
        async for chunk in result.body:
            counters.bytes_fetched += len(chunk)
            self._deliver(chunk)
        if self.offset < self.end:
            missing = self.end - self.offset
            raise Unavailable(f"the body of {self.key!r} ended {missing} bytes early")

    def _deliver(self, chunk: bytes) -> None:
        """Split a received chunk across the blocks it covers."""
        cache = self.ctx.blocks
        while chunk:
            if self._current >= len(self.blocks) or self.offset >= self.end:
                raise Upstream(f"the store sent more bytes of {self.key!r} than asked")
            block = self.blocks[self._current]
            room = block.end - self.offset
            piece, chunk = (chunk, b"") if len(chunk) <= room else (chunk[:room], chunk[room:])
            block.append(piece)
            self.offset += len(piece)
            if block.done:
                block.fetch = None
                self._current += 1
                if cache.disk is not None and block.index >= 0:  # not a private exact read
                    cache.disk.write_behind(disk_id(self.ctx, self.key, self.etag, block.index),
                                            list(block.chunks), block.later())
                cache.settle(block)

    def _fail(self, error: BaseException) -> None:
        cache = self.ctx.blocks
        for block in self.blocks[self._current :]:
            if not block.done:
                block.fail(error)
                cache.retire(block)
                cache.settle(block)


def disk_id(ctx: ReadContext, key: str, etag: str, index: int) -> BlockId:
    """How the disk tier names block ``index`` of a version: by the store's description,
    which stays the same from one start to the next (view ids do not)."""
    return BlockId(ctx.store.description, key, etag, index)


class DiskLoad:
    """Fills one block from the disk tier; a block the disk cannot serve intact (gone,
    corrupted, another block's file) is fetched from the store instead."""

    def __init__(self, ctx: ReadContext, key: str, etag: str, block: Block,
                 version_id: str | None = None) -> None:
        self.ctx = ctx
        self.key = key
        self.etag = etag
        self.block = block
        self.version_id = version_id
        self.task: asyncio.Task[None] | None = None
        block.fetch = self

    def __repr__(self) -> str:
        return f"DiskLoad({self.key!r}#{self.block.index})"

    def start_task(self) -> None:
        self.task = self.ctx.spawn(self.run())

    def orphaned(self) -> bool:
        return self.block.pins == 0

    def cancel(self) -> None:
        if not self.block.done:
            self.ctx.blocks.retire(self.block)
        if self.task is not None:
            self.task.cancel()

    async def run(self) -> None:
        block, cache = self.block, self.ctx.blocks
        disk = cache.disk
        try:
            data = None if disk is None else await disk.read(
                disk_id(self.ctx, self.key, self.etag, block.index), block.size)
        except asyncio.CancelledError:
            block.fail(FetchCancelled())
            cache.retire(block)
            cache.settle(block)
            raise
        if data is None:
            Fetch(self.ctx, self.key, self.etag, [block], self.version_id).start_task()
            return
        block.append(data)
        block.fetch = None
        cache.settle(block)


def from_disk(ctx: ReadContext, key: str, etag: str, blocks: list[Block],
              version_id: str | None = None) -> list[Block]:
    """Start filling from the disk tier the ``blocks`` it holds; the others, to fetch."""
    disk = ctx.blocks.disk
    if disk is None:
        return blocks
    rest = []
    for block in blocks:
        if disk.wanted(disk_id(ctx, key, etag, block.index)):
            DiskLoad(ctx, key, etag, block, version_id).start_task()
        else:
            rest.append(block)
    return rest

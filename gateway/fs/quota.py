"""A share's quota (RFC 4331): how many bytes it holds, counted in the background.

``used`` is the bytes of every object under the share's prefix (keys the filters hide
included: they take room too). It is counted by one background task per share with a
quota: a listing of the prefix, one page (1000 keys) at a time, never on a request's
path, repeated every ``refresh`` seconds. Writes through this process adjust it at once
(``add``); writes by others, or by other processes, show at the next count. Until the
first count ends, ``used`` is None and PROPFIND leaves the quota properties out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.engine import StoreView
from gateway.errors import InsufficientStorage

log = logging.getLogger(__name__)

REFRESH = 600.0  # seconds between two counts
RETRY = 30.0  # seconds before a failed count is tried again


class Quota:
    def __init__(self, view: StoreView, prefix: str, limit: int,
                 refresh: float = REFRESH) -> None:
        self.view = view
        self.prefix = prefix
        self.limit = limit
        self.refresh = refresh
        self.used: int | None = None
        self.scans = 0  # counts finished (tests wait for the first)
        self._task: asyncio.Task[None] | None = None
        self._scanned = asyncio.Event()

    @property
    def available(self) -> int | None:
        return None if self.used is None else max(0, self.limit - self.used)

    def add(self, delta: int) -> None:
        """A write through the gateway changed the bytes held by ``delta``."""
        if self.used is not None and delta:
            self.used = max(0, self.used + delta)

    def refusal(self, announced: int | None, replaced: int = 0) -> None:
        """507 for an upload of ``announced`` bytes (replacing ``replaced``) that would pass
        the quota; before the first count, only one larger than the quota itself."""
        if announced is None:
            if self.used is not None and self.used >= self.limit:
                raise InsufficientStorage(self._message("the share is full"))
            return
        after = (self.used or 0) - replaced + announced
        if after > self.limit:
            raise InsufficientStorage(self._message(
                f"an upload of {announced:,} bytes would pass it"))

    def _message(self, what: str) -> str:
        used = "not counted yet" if self.used is None else f"{self.used:,} bytes used"
        return (f"{what}: the share's quota is {self.limit:,} bytes ({used}); nothing was "
                "written")

    async def count(self) -> int:
        """Sum the sizes under the prefix, one page at a time (one listing in flight)."""
        total = 0
        async for page in self.view.tree_pages(self.prefix):
            total += sum(info.size for info in page.objects)
        return total

    async def scan(self) -> None:
        self.used = await self.count()
        self.scans += 1
        self._scanned.set()

    async def wait_scanned(self) -> None:
        await self._scanned.wait()

    async def _run(self) -> None:
        while True:
            try:
                await self.scan()
                delay = self.refresh
            except Exception as exc:  # a store error: one line, and a retry
                log.warning("quota count of %s failed: %s", self.view.description, exc)
                delay = min(self.refresh, RETRY)
            await asyncio.sleep(delay)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="quota count")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

"""One process-wide memory budget for buffered bytes (read-ahead blocks, upload parts).

Its size is ``--memory-target`` less a reserve for the process itself (``buffer_budget``),
so the whole process, not only its buffers, stays near the target.

Work that would exceed the budget waits, first come first served, until bytes are
released; the budget never grows. Every buffered byte is reserved: a reservation larger
than the whole budget could never be met, and is a bug of its caller (ValueError), never
clamped, since a clamped reservation would let bytes be held that the budget does not
count. Callers size their buffers to fit (blocks, upload parts: ``choose_part_size``).

Bytes held only as a cache are reclaimable: before anyone is made to wait (or refused by
``try_acquire``), the registered reclaimers are asked to give back what is missing, e.g.
by evicting cold cached blocks. So the cache can use memory nobody else needs, and never
stands in the way of a read or an upload part.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

MiB = 1024 * 1024
# The process itself (interpreter, libraries, sockets: about 75 MiB at rest) lives within
# --memory-target too, so buffers get the target less this reserve: a quarter of the
# target, at most 112 MiB. With every buffer in use the process then stays under the target.
# Under load it holds more than at rest that the budget cannot count (the allocator's free
# memory between blocks, socket buffers): 32 readers of the disk cache, each from its own
# offset, peaked at 495-513 MiB under a 512 MiB target with 96 MiB kept back, and at
# 476-483 MiB with 112.
PROCESS_RESERVE = 112 * MiB


def buffer_budget(target: int) -> int:
    """The bytes buffers may hold under a memory target of ``target`` bytes."""
    return target - min(PROCESS_RESERVE, target // 4)


def target_for(budget: int) -> int:
    """The smallest memory target, in whole MiB, whose buffers hold ``budget`` bytes (what
    a refusal tells the operator to start with)."""
    low, high = 1, -(-budget // MiB) + PROCESS_RESERVE // MiB  # ``high`` always holds it
    while low < high:  # buffer_budget only grows with the target
        mid = (low + high) // 2
        if buffer_budget(mid * MiB) >= budget:
            high = mid
        else:
            low = mid + 1
    return high


class MemoryBudget:
    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("memory budget must be positive")
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._reclaimers: list[Callable[[int], int]] = []

    def add_reclaimer(self, reclaim: Callable[[int], int]) -> None:
        """Register ``reclaim(n)``: release up to ``n`` bytes (by calling ``release``) and
        return how many were released. It must not await or acquire."""
        self._reclaimers.append(reclaim)

    def _fits(self, n: int) -> bool:
        """Whether ``n`` more bytes fit now, reclaiming cached bytes if that makes them fit."""
        missing = self.in_use + n - self.limit
        for reclaim in self._reclaimers:
            if missing <= 0:
                break
            missing -= reclaim(missing)
        return self.in_use + n <= self.limit

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def available(self) -> int:
        return self.limit - self.in_use

    def _check(self, n: int) -> None:
        if n > self.limit:
            raise ValueError(f"a reservation of {n} bytes can never fit a budget of "
                             f"{self.limit} bytes")

    def try_acquire(self, n: int) -> int:
        """Reserve ``n`` bytes now if they fit and nobody is waiting; 0 if not."""
        self._check(n)
        if self._waiters or not self._fits(n):
            return 0
        self._take(n)
        return n

    async def acquire(self, n: int) -> int:
        """Wait until ``n`` bytes fit, reserve them and return ``n``."""
        self._check(n)
        if not self._waiters and self._fits(n):
            self._take(n)
            return n
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, future)
        self._waiters.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(n)  # granted just as we were cancelled: give it back
            else:
                # A release may already have dropped the cancelled entry (``_wake``).
                with suppress(ValueError):
                    self._waiters.remove(entry)
                self._wake()
            raise
        return n

    def release(self, n: int) -> None:
        self.in_use -= n
        if self.in_use < 0:
            raise RuntimeError("memory budget released more than was reserved")
        self._wake()

    @asynccontextmanager
    async def reserve(self, n: int) -> AsyncIterator[int]:
        got = await self.acquire(n)
        try:
            yield got
        finally:
            self.release(got)

    def _take(self, n: int) -> None:
        self.in_use += n
        self.peak = max(self.peak, self.in_use)

    def _wake(self) -> None:
        while self._waiters and self.in_use + self._waiters[0][0] <= self.limit:
            n, future = self._waiters.popleft()
            if future.done():
                continue
            self._take(n)
            future.set_result(None)

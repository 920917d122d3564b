"""Blocks of object versions, shared by every reader of the process.

A block is identified by ``(store id, key, etag, index)``: the etag makes it immutable,
so a cached block never needs a TTL and can never mix two versions. Every block holds a
reservation (``charge``) on the memory budget from the moment its fetch is planned until
nobody can use it any more; the budget therefore bounds in-flight, pinned and cached
bytes together.

Life of a block:

* in flight: created by a reader and filled by a ``Fetch`` as the body arrives; readers
  may consume the bytes already there (streaming), others wait;
* pinned: readers hold it (``pins``) in their read-ahead window; pinned blocks are never
  evicted;
* cached: complete and unpinned, in the LRU (bounded by a share of the budget); a reader
  that finds it pins it again (it leaves the LRU while pinned);
* retired: no longer findable (evicted, replaced, failed); its charge goes back to the
  budget once it is complete (or failed) and unpinned.

An in-flight block nobody pins any more makes its fetch an orphan: the fetch is cancelled
(when none of its blocks is wanted) so a disconnected client costs nothing further.
"""

from __future__ import annotations

import asyncio
import weakref
from bisect import bisect_right
from collections.abc import Callable
from typing import Protocol

from cachetools import LRUCache

from gateway.engine.budget import MemoryBudget
from gateway.engine.counters import Counters
from gateway.engine.diskcache import DiskCache
from gateway.errors import GatewayError

BlockKey = tuple[int, str, str, int]  # (store id, key, etag, block index)


class Filler(Protocol):
    """What fills an in-flight block (a ``Fetch``), as far as the cache needs to know."""

    def orphaned(self) -> bool:
        """True when no block it still has to fill is wanted by any reader."""
        ...

    def cancel(self) -> None: ...


class Block:
    __slots__ = (
        "__weakref__",  # ``later``: a disk write asks for the bytes without holding them
        "_arrived",
        "_ends",
        "cached",
        "charge",
        "chunks",
        "error",
        "fetch",
        "filled",
        "keep",
        "key",
        "pins",
        "retired",
        "size",
        "start",
    )

    def __init__(self, key: BlockKey, start: int, size: int, charge: int) -> None:
        self.key = key
        self.start = start  # offset of the block in the object
        self.size = size
        self.charge = charge  # bytes reserved on the budget for it
        self.chunks: list[bytes] = []  # as received: no copy to assemble a block
        self._ends: list[int] = []  # end offset (in the block) of each chunk
        self.filled = 0
        self.error: BaseException | None = None
        self.pins = 0
        self.keep = True  # cache it when the last pin goes (the last reader decides)
        self.cached = False
        self.retired = False
        self.fetch: Filler | None = None
        self._arrived = asyncio.Event()

    def __repr__(self) -> str:
        return (
            f"Block({self.key[1]!r}#{self.key[3]} {self.filled}/{self.size} pins={self.pins}"
            f"{' cached' if self.cached else ''}{' retired' if self.retired else ''})"
        )

    @property
    def index(self) -> int:
        return self.key[3]

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def complete(self) -> bool:
        return self.error is None and self.filled == self.size

    @property
    def done(self) -> bool:
        """Nothing more will arrive: complete or failed."""
        return self.error is not None or self.filled == self.size

    def later(self) -> Callable[[], list[bytes] | None]:
        """Its bytes when asked later, while the cache still holds it (complete and not
        retired: a retired block's bytes go back to the budget); None after. A weak
        reference: asking never keeps a block alive."""
        ref = weakref.ref(self)

        def held() -> list[bytes] | None:
            block = ref()
            if block is None or block.retired or not block.complete:
                return None
            return list(block.chunks)

        return held

    # ---- filled by a fetch ---------------------------------------------------------
    def append(self, data: bytes) -> None:
        if self.done:
            raise RuntimeError(f"{self!r} is already done")
        if self.filled + len(data) > self.size:
            raise RuntimeError(f"{self!r} overflows")
        self.chunks.append(data)
        self.filled += len(data)
        self._ends.append(self.filled)
        self._pulse()

    def fail(self, error: BaseException) -> None:
        if not self.done:
            self.error = error
            self.fetch = None
            self._pulse()

    def _pulse(self) -> None:
        # Wake every waiting reader; set() resolves the waiters now, clear() readies the
        # event for the next arrival (a reader checks ``filled`` before waiting again).
        self._arrived.set()
        self._arrived.clear()

    # ---- read by readers -------------------------------------------------------------
    def piece(self, lo: int, hi: int) -> bytes | None:
        """Bytes available from ``lo`` (block offset), up to ``hi`` and the end of one
        received chunk; None if nothing past ``lo`` has arrived yet. Whole chunks are
        handed out as they are, without a copy."""
        if lo >= self.filled:
            if self.error is not None:
                raise _fresh(self.error)
            return None
        i = bisect_right(self._ends, lo)
        chunk = self.chunks[i]
        base = self._ends[i] - len(chunk)
        return chunk[lo - base : min(hi, self._ends[i]) - base]

    async def wait(self) -> None:
        """Wait for more bytes (or the end); cancelling a waiter affects nobody else."""
        if not self.done:
            await self._arrived.wait()
        if self.error is not None:
            raise _fresh(self.error)


def _fresh(error: BaseException) -> BaseException:
    """A new exception for each reader: one instance raised in many tasks would share
    (and grow) one traceback."""
    if isinstance(error, GatewayError):
        fresh = type(error)(error.message)
        fresh.__cause__ = error.__cause__
        return fresh
    return error


class _LRU(LRUCache[BlockKey, Block]):
    def __init__(self, maxsize: int, evicted: Callable[[Block], None]) -> None:
        super().__init__(maxsize, getsizeof=_block_size)
        self._evicted = evicted

    def popitem(self) -> tuple[BlockKey, Block]:
        key, block = super().popitem()
        self._evicted(block)
        return key, block


def _block_size(block: Block) -> int:
    return block.size


class BlockCache:
    """Every live block of the process: in flight, pinned or cached (the LRU)."""

    def __init__(self, budget: MemoryBudget, max_cached: int, counters: Counters) -> None:
        self.budget = budget
        self.counters = counters
        self._live: dict[BlockKey, Block] = {}
        self._by_object: dict[tuple[int, str], set[BlockKey]] = {}
        self._lru = _LRU(max_cached, self._evicted)
        budget.add_reclaimer(self.reclaim)
        # The disk tier behind this cache (--cache), set when the process has one: fetches
        # hand it their blocks and reads look there before the store.
        self.disk: DiskCache | None = None

    def use_disk(self, disk: DiskCache) -> None:
        """Put ``disk`` behind this cache; it counts and holds memory with this cache's
        counters and budget."""
        disk.attach(self.budget, self.counters)
        self.disk = disk

    @property
    def cached_bytes(self) -> int:
        """Bytes held by idle cached blocks (what ``clear`` would give back)."""
        return int(self._lru.currsize)

    def __len__(self) -> int:
        return len(self._live)

    def get(self, key: BlockKey) -> Block | None:
        """The live block for ``key``, without pinning it (for tests and decisions)."""
        return self._live.get(key)

    # ---- pinning -------------------------------------------------------------------
    def lookup(self, key: BlockKey) -> Block | None:
        """The live block for ``key``, pinned for the caller; None if it must be fetched."""
        block = self._live.get(key)
        if block is None:
            return None
        if block.complete:
            self.counters.block_hits += 1
        else:
            self.counters.blocks_shared += 1
        self.pin(block)
        return block

    def create(self, key: BlockKey, start: int, size: int, charge: int) -> Block:
        """A new block, live and pinned once for its creator, to be filled by a fetch."""
        if key in self._live:
            raise RuntimeError(f"block {key!r} already exists")
        block = Block(key, start, size, charge)
        block.pins = 1
        self._live[key] = block
        self._by_object.setdefault((key[0], key[1]), set()).add(key)
        self.counters.block_misses += 1
        return block

    def pin(self, block: Block) -> None:
        if block.cached:
            block.cached = False
            del self._lru[block.key]  # a pinned block is not evictable
        block.pins += 1

    def hand_off(self, block: Block, takers: int) -> None:
        """Turn the one pin ``create``/``lookup`` gave into one pin for each of ``takers``
        (none: the pin is given back), with no await in between."""
        if takers > 0:
            block.pins += takers - 1
        else:
            self.unpin(block)

    def unpin(self, block: Block, keep: bool = True) -> None:
        if block.pins <= 0:
            raise RuntimeError(f"{block!r} unpinned more often than pinned")
        block.pins -= 1
        if block.pins == 0:
            block.keep = keep
            self.settle(block)

    # ---- state changes -----------------------------------------------------------------
    def settle(self, block: Block) -> None:
        """Decide what becomes of a block nobody pins: called when the last pin goes and
        when its fetch ends."""
        if block.pins:
            return
        if not block.done:
            fetch = block.fetch
            if fetch is not None and fetch.orphaned():
                self.counters.fetches_cancelled += 1
                fetch.cancel()
            return
        if (
            block.error is not None
            or block.retired
            or not block.keep
            or self.budget.waiting  # someone waits for memory: give it, do not cache
            or block.size > self._lru.maxsize
        ):
            self._retire(block)
            return
        if not block.cached:
            block.cached = True
            self._lru[block.key] = block  # may evict colder blocks

    def retire(self, block: Block) -> None:
        """Make a block unfindable; its bytes go back once its readers are done."""
        self._retire(block)

    def retire_object(self, store_id: int, key: str, etag: str | None = None) -> None:
        """Forget the blocks of ``key`` (only those of ``etag`` if given). Readers that
        pin them finish with the bytes they hold."""
        self._retire_versions(store_id, key, lambda version: etag is None or version == etag)

    def retire_other_versions(self, store_id: int, key: str, etag: str) -> None:
        """Forget the blocks of ``key`` but those of ``etag`` (now its current version)."""
        self._retire_versions(store_id, key, lambda version: version != etag)

    def reclaim(self, wanted: int) -> int:
        """Evict cold cached blocks until ``wanted`` bytes are released (budget hook)."""
        freed = 0
        while freed < wanted and len(self._lru):
            _, block = self._lru.popitem()  # releases through _evicted
            freed += block.size
        return freed

    def clear(self) -> None:
        """Drop every idle cached block (pinned and in-flight ones stay)."""
        while len(self._lru):
            self._lru.popitem()

    # ---- internals -------------------------------------------------------------------
    def _retire_versions(self, store_id: int, key: str, which: Callable[[str], bool]) -> None:
        """Retire the live blocks of ``key`` whose etag ``which`` picks."""
        for block_key in list(self._by_object.get((store_id, key), ())):
            if which(block_key[2]):
                block = self._live.get(block_key)
                if block is not None:
                    self._retire(block)

    def _evicted(self, block: Block) -> None:
        block.cached = False
        self._retire(block)

    def _retire(self, block: Block) -> None:
        if not block.retired:
            block.retired = True
            if self._live.get(block.key) is block:
                del self._live[block.key]
                object_key = (block.key[0], block.key[1])
                keys = self._by_object.get(object_key)
                if keys is not None:
                    keys.discard(block.key)
                    if not keys:
                        del self._by_object[object_key]
        if block.cached:
            block.cached = False
            del self._lru[block.key]
        if block.pins == 0 and block.done and block.charge:
            charge, block.charge = block.charge, 0
            block.chunks, block._ends = [], []
            self.budget.release(charge)

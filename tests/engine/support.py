"""Helpers for the engine tests: an engine over the in-memory store, reading helpers,
and a store whose GET bodies can be held back (a slow store, to see work in flight)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from gateway.engine import Engine, OpenRead, StoreView, Tuning
from gateway.settings import EngineSettings
from gateway.storage.base import GetResult, ObjectStore
from tests.memorystore import MemoryStore

KiB = 1024
MiB = 1024 * KiB


async def stream(data: bytes, chunk: int = 64 * KiB) -> AsyncIterator[bytes]:
    """``data`` as a request body, ``chunk`` bytes at a time."""
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def make_view(
    store: ObjectStore,
    memory_mib: int = 256,
    ttl: float = 5.0,
    part_mib: int = 8,
    **tuning: Any,
) -> StoreView:
    """A view on a fresh engine; retries do not sleep."""
    settings = EngineSettings(
        memory_target=memory_mib, part_size=part_mib, read_part_size=part_mib, metadata_ttl=ttl
    )
    tuning.setdefault("backoff", 0.0)
    return Engine(settings, Tuning.from_settings(settings, **tuning)).view(store)


async def read_range(read: OpenRead, start: int, end: int) -> bytes:
    async with aclosing(read.iter_range(start, end)) as chunks:
        return b"".join([chunk async for chunk in chunks])


async def read_key(view: StoreView, key: str) -> bytes:
    async with await view.open(key) as read:
        return await read_range(read, 0, read.info.size)


def ranges(store: MemoryStore, key: str | None = None) -> list[tuple[int, int, str | None]]:
    """``(start, end, if_match)`` of every GET the store answered (for ``key``)."""
    return [(s, e, m) for k, s, e, m in store.get_ranges if key is None or k == key]


def fetched_once(got: list[tuple[int, int, str | None]], size: int) -> bool:
    """The GETs tile ``[0, size)`` exactly: no byte was fetched twice."""
    spans = sorted((start, end) for start, end, _ in got)
    position = 0
    for start, end in spans:
        if start != position:
            return False
        position = end
    return position == size


async def until(condition: Any, what: str, turns: int = 10_000) -> None:
    """Let the event loop run until ``condition()`` holds (no clock involved)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


@dataclass
class GatedStore(MemoryStore):
    """A MemoryStore whose GET bodies wait while ``gate`` is closed, and whose GET answers
    wait while ``answer`` is closed: a slow store."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    answer: asyncio.Event = field(default_factory=asyncio.Event)
    asked: int = 0
    bodies_open: int = 0

    def __post_init__(self) -> None:
        self.gate.set()
        self.answer.set()

    async def get(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        if_match: str | None = None,
    ) -> GetResult:
        self.asked += 1
        await self.answer.wait()
        result = await super().get(key, start, end, if_match)
        inner = result.body

        async def body() -> AsyncIterator[bytes]:
            self.bodies_open += 1
            try:
                async for chunk in inner:
                    await self.gate.wait()
                    yield chunk
            finally:
                self.bodies_open -= 1

        return GetResult(result.info, result.start, result.end, body())

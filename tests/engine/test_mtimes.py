"""Listings learn stored modification times from the state store, a page at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from gateway.engine.mtimes import MtimeIndex
from gateway.state.memory import MemoryState
from gateway.storage.base import ObjectInfo

SCOPE = "s3://bucket/"
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


class CountingState(MemoryState):
    """The in-memory state store, counting the property reads a listing makes."""

    def __init__(self) -> None:
        super().__init__()
        self.single = 0
        self.batched = 0

    async def props_get(self, scope: str, key: str) -> dict[str, str]:
        self.single += 1
        return await super().props_get(scope, key)

    async def props_get_many(self, scope: str, keys: Sequence[str]) -> list[dict[str, str]]:
        self.batched += 1
        return await super().props_get_many(scope, keys)


def info(n: int) -> ObjectInfo:
    return ObjectInfo(key=f"dir/f{n}", size=1, etag=f'"e{n}"', last_modified=WHEN)


def test_a_page_of_unknown_keys_costs_one_state_call_and_each_gets_its_own_time() -> None:
    async def main() -> None:
        writer, reader = MtimeIndex(), MtimeIndex()  # two processes sharing the state
        state = CountingState()
        writer.state = reader.state = state
        page = tuple(info(n) for n in range(50))
        for n in range(0, 50, 2):  # every other key has a stored time
            await writer.record(SCOPE, f"dir/f{n}", f'"e{n}"', 1_000_000.0 + n)
        times = await reader.fill(SCOPE, page)
        assert times == [1_000_000.0 + n if n % 2 == 0 else None for n in range(50)]
        assert (state.batched, state.single) == (1, 0)
        # Learnt, found or not: the same page again asks nothing.
        assert await reader.fill(SCOPE, page) == times
        assert (state.batched, state.single) == (1, 0)

    asyncio.run(main())


def test_a_time_stored_for_another_version_is_not_shown() -> None:
    async def main() -> None:
        writer, reader = MtimeIndex(), MtimeIndex()
        writer.state = reader.state = MemoryState()
        await writer.record(SCOPE, "dir/f1", '"old"', 1_000_000.0)
        assert await reader.fill(SCOPE, (info(1),)) == [None]  # listed etag is "e1"

    asyncio.run(main())

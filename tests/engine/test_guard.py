"""One creator of a new name at a time (``gateway.engine.guard``), and StoreView's creates
over a store that does not enforce create-only writes itself.

``LaxStore`` behaves as s3rver does (and moto on CopyObject): it ignores the condition, so
its create-only writes look first and then write, with a moment between the two in which
another creator can slip. Without the write guard both creators of one name succeed and
the first one's bytes are silently replaced; with it, exactly one wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from gateway.engine import StoreView
from gateway.engine.guard import ProcessWriteGuard
from gateway.errors import Exists, NotFound
from gateway.storage.base import ObjectInfo, UploadPart
from tests.engine.support import make_view
from tests.engine.support import stream as body
from tests.memorystore import MemoryStore

MiB = 1024 * 1024
GAP = 0.01  # seconds between a lax store's look and its write


@dataclass
class LaxStore(MemoryStore):
    """Create-only writes are a look (HEAD), a pause, then an unconditional write; other
    writes take the same pause (a write takes time)."""

    async def _look(self, key: str, if_none_match: bool) -> None:
        if if_none_match:
            try:
                await self.head(key)
            except NotFound:
                pass
            else:
                raise Exists(f"{key!r} exists")
        await asyncio.sleep(GAP)  # the window a look-first store leaves open

    async def put(self, key: str, data: bytes, content_type: str | None = None,
                  if_none_match: bool = False, mtime: float | None = None) -> ObjectInfo:
        await self._look(key, if_none_match)
        return await super().put(key, data, content_type, mtime=mtime)

    async def complete_upload(self, key: str, upload_id: str, parts: list[UploadPart],
                              if_none_match: bool = False) -> ObjectInfo:
        await self._look(key, if_none_match)
        return await super().complete_upload(key, upload_id, parts)

    async def copy(self, src: str, dst: str, if_none_match: bool = False) -> ObjectInfo:
        await self._look(dst, if_none_match)
        return await super().copy(src, dst)


Create = Callable[[StoreView, bytes], Awaitable[ObjectInfo]]


async def put(view: StoreView, data: bytes) -> ObjectInfo:
    return await view.put("x", data, create_only=True)


async def stream(view: StoreView, data: bytes) -> ObjectInfo:
    return await view.write_stream("x", body(data, 256 * 1024), expected_size=len(data),
                                   create_only=True)


async def copy(view: StoreView, data: bytes) -> ObjectInfo:
    source = f"source-{data[:1].hex()}"
    assert isinstance(view.store, MemoryStore)
    view.store.put_sync(source, data)
    return await view.copy(source, "x", create_only=True)


CREATES: dict[str, tuple[Create, int]] = {
    "put": (put, 1000),
    "multipart": (stream, 12 * MiB),  # three parts of 5 MiB
    "copy": (copy, 1000),
}


@pytest.mark.parametrize("create", CREATES.keys())
async def test_two_creators_of_one_name_on_a_lax_store_one_wins(create: str) -> None:
    run, size = CREATES[create]
    store = LaxStore()
    view = make_view(store, part_mib=5)
    ours, theirs = b"a" * size, b"b" * size
    results = await asyncio.gather(run(view, ours), run(view, theirs), return_exceptions=True)
    winners = [r for r in results if isinstance(r, ObjectInfo)]
    losers = [r for r in results if isinstance(r, Exists)]
    assert (len(winners), len(losers)) == (1, 1), results
    assert store.objects["x"].data == (ours if results[0] is winners[0] else theirs)
    assert store.uploads == {}  # the loser's upload was aborted
    guard = view.engine.write_guard
    assert isinstance(guard, ProcessWriteGuard) and guard.held == 0


async def test_writes_that_may_replace_are_not_guarded() -> None:
    """--allow-overwrite and placeholder fills replace: the guard is for creates only."""
    store = LaxStore()
    view = make_view(store)
    await asyncio.gather(view.put("x", b"one"), view.put("x", b"two"))
    assert store.objects["x"].data in (b"one", b"two")


async def test_the_guard_lets_one_creator_of_a_name_commit_at_a_time() -> None:
    guard = ProcessWriteGuard()
    order: list[str] = []

    async def creator(name: str, key: str) -> None:
        async with guard.guard("store", key):
            order.append(f"{name} in")
            await asyncio.sleep(GAP)
            order.append(f"{name} out")

    await asyncio.gather(creator("a", "k"), creator("b", "k"), creator("c", "other"))
    # c creates another name: it does not wait; a and b take turns.
    assert order.index("c in") < order.index("a out")
    assert order.index("a out") < order.index("b in")
    assert guard.held == 0


async def test_names_are_per_store() -> None:
    guard = ProcessWriteGuard()
    async with guard.guard("store one", "k"), guard.guard("store two", "k"):
        assert guard.held == 2
    assert guard.held == 0


async def test_a_waiter_that_is_cancelled_leaves_nothing_behind() -> None:
    guard = ProcessWriteGuard()
    holding = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with guard.guard("s", "k"):
            holding.set()
            await release.wait()

    first = asyncio.create_task(holder())
    await holding.wait()
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await first
    assert guard.held == 0
    async with guard.guard("s", "k"):  # free again
        assert guard.held == 1


async def test_a_failed_commit_lets_the_next_creator_win() -> None:
    """The guard waits rather than refuses: a creator whose commit fails (the store
    refused it, its client went away) does not turn the other one away."""
    store = LaxStore()
    store.fail("put", Exists("refused once"), key="x")  # the first commit fails
    view = make_view(store)
    results = await asyncio.gather(put(view, b"first"), put(view, b"second"),
                                   return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["Exists", "ObjectInfo"]
    assert store.objects["x"].data == b"second"

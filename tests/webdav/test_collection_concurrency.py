"""How many store calls a collection's DELETE and COPY keep in flight, and in which order
(SEMANTICS, DELETE: "DeleteObjects batches of at most 1000 keys, 4 batches in flight; objects
first, then directory markers deepest first"; COPY: "8 copies in flight").

The store holds every call for a moment and counts the calls in flight, so the bound is seen
reached, not just respected: a gateway doing one call at a time would respect any bound.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from gateway.storage.base import ObjectInfo
from tests.apps import ALL_FLAGS, app_for
from tests.memorystore import MemoryStore

HOLD = 0.02  # seconds each call stays in flight: long enough for the others to start


@dataclass
class SlowStore(MemoryStore):
    """A MemoryStore whose deletes and copies take a moment, recording how many run at once
    and every DeleteObjects batch in the order it was sent."""

    in_flight: int = 0
    most_in_flight: int = 0
    batches: list[list[str]] = field(default_factory=list)

    async def _held(self) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(HOLD)
        finally:
            self.in_flight -= 1

    async def delete_many(self, keys: list[str]) -> dict[str, str]:
        self.batches.append(list(keys))
        await self._held()
        return await super().delete_many(keys)

    async def copy(self, src: str, dst: str, if_none_match: bool = False) -> ObjectInfo:
        await self._held()
        return await super().copy(src, dst, if_none_match)


def tree(store: MemoryStore, objects: int) -> set[str]:
    """``objects`` files spread over nested folders of ``dir/``, with their markers."""
    markers = {"dir/", "dir/a/", "dir/a/b/", "dir/a/b/c/", "dir/z/", "dir/z/y/"}
    folders = sorted(markers)
    for key in markers:
        store.put_sync(key, b"")
    for i in range(objects):
        store.put_sync(f"{folders[i % len(folders)]}f{i:05d}", b"x")
    store.put_sync("dir2/kept", b"x")  # a sibling sharing the prefix "dir"
    return markers


async def test_delete_of_a_collection_sends_four_batches_at_once_then_markers_deepest_first(
    aiohttp_client: Any,
) -> None:
    store = SlowStore()
    markers = tree(store, 7000)  # seven batches of objects: more than four could run at once
    client = await aiohttp_client(app_for(store, policy=ALL_FLAGS))
    resp = await client.delete("/dir/")
    assert resp.status == 204
    assert set(store.objects) == {"dir2/kept"}
    assert store.most_in_flight == 4
    assert all(len(batch) <= 1000 for batch in store.batches)
    sent = [key for batch in store.batches for key in batch]
    assert len(sent) == len(set(sent)) == 7000 + len(markers)  # each key once
    first_marker = min(i for i, key in enumerate(sent) if key.endswith("/"))
    assert all(key.endswith("/") for key in sent[first_marker:])  # objects first
    order = {key: i for i, key in enumerate(sent)}
    for marker in markers:
        inner = [m for m in markers if m != marker and m.startswith(marker)]
        assert all(order[m] < order[marker] for m in inner), f"{marker} before what it holds"


async def test_copy_of_a_collection_keeps_eight_copies_in_flight(aiohttp_client: Any) -> None:
    store = SlowStore()
    markers = tree(store, 40)
    client = await aiohttp_client(app_for(store, policy=ALL_FLAGS))
    resp = await client.request("COPY", "/dir/", headers={"Destination": "/copy/"})
    assert resp.status == 201
    assert store.calls["copy"] == 40  # markers are written anew, not copied
    assert store.most_in_flight == 8
    copied = {k for k in store.objects if k.startswith("copy/")}
    assert copied == {"copy/" + k.removeprefix("dir/")
                      for k in store.objects if k.startswith("dir/")}
    assert {"copy/" + m.removeprefix("dir/") for m in markers} <= copied

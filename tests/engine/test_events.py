"""Cache invalidation between processes (``gateway.engine.events``): two engines on one
state store stand for two processes. A write through one drops what the other cached of
that key (or, for a batch, of everything under the batch's common prefix) at once, the
writer keeps what its write taught it, ``EVERYTHING`` drops all metadata, and a state store
that cannot take the event never fails the write."""

from __future__ import annotations

import asyncio

import pytest

from gateway.engine import Engine, StoreView
from gateway.engine.events import CacheEvents
from gateway.errors import NotFound, StateUnavailable
from gateway.settings import EngineSettings
from gateway.state import EVERYTHING, MemoryState
from tests.memorystore import MemoryStore

LONG = EngineSettings(metadata_ttl=3600.0)


def two_processes(store: MemoryStore) -> tuple[StoreView, StoreView, MemoryState]:
    state = MemoryState()
    views = []
    for _ in range(2):
        engine = Engine(LONG)
        engine.use_state(state, shared=False)
        views.append(engine.view(store))
    return views[0], views[1], state


async def test_a_write_through_one_engine_drops_what_the_other_cached() -> None:
    store = MemoryStore()
    store.put_sync("dir/old", b"old")
    one, two, _ = two_processes(store)
    with pytest.raises(NotFound):
        await two.stat("dir/new")
    assert [o.key for o in (await two.list_page("dir/")).objects] == ["dir/old"]

    await one.put("dir/new", b"new")
    assert (await two.stat("dir/new")).size == 3
    assert [o.key for o in (await two.list_page("dir/")).objects] == ["dir/new", "dir/old"]
    heads = store.calls["head"]
    assert (await one.stat("dir/new")).size == 3  # its own event did not drop what it knew
    assert store.calls["head"] == heads

    await one.delete("dir/new")
    assert [o.key for o in (await two.list_page("dir/")).objects] == ["dir/old"]


async def test_a_batch_delete_drops_everything_under_its_common_prefix() -> None:
    store = MemoryStore()
    for key in ("tree/a/1", "tree/b/2", "other"):
        store.put_sync(key, b"x")
    one, two, _ = two_processes(store)
    for key in ("tree/a/1", "tree/b/2", "other"):
        await two.stat(key)
    await two.list_page("tree/a/")
    await one.delete_many(["tree/a/1", "tree/b/2"])
    heads = store.calls["head"]
    for key in ("tree/a/1", "tree/b/2"):
        with pytest.raises(NotFound):
            await two.stat(key)
    assert store.calls["head"] == heads + 2
    assert (await two.list_page("tree/a/")).objects == ()
    await two.stat("other")  # outside the prefix: still cached
    assert store.calls["head"] == heads + 2


async def test_everything_drops_all_metadata() -> None:
    store = MemoryStore()
    store.put_sync("k", b"v")
    _, two, state = two_processes(store)
    await two.stat("k")
    await state.publish(EVERYTHING.scope, EVERYTHING.key, prefix=True)
    heads = store.calls["head"]
    await two.stat("k")
    assert store.calls["head"] == heads + 1


class DownState(MemoryState):
    async def publish(self, scope: str, key: str, *, prefix: bool = False) -> None:
        raise StateUnavailable("the state store (test) is unavailable")


async def test_a_write_succeeds_when_the_event_cannot_be_published() -> None:
    store = MemoryStore()
    engine = Engine(LONG)
    engine.use_state(DownState(), shared=False)
    view = engine.view(store)
    info = await view.put("k", b"v")
    assert store.objects["k"].data == b"v" and info.size == 1
    assert engine.events.failed == 1


async def test_each_echo_wakes_a_writer_still_waiting() -> None:
    # Two writes of one key wait for their two echoes; the first writer, once woken, may
    # still be in the list when the second echo arrives, which must wake the second.
    events = CacheEvents()
    event = ("store", "k", False)
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    events._echoes[event] = [first, second]
    events._echoed(event)
    events._echoed(event)
    assert first.done() and second.done()

"""Reads through the engine: exact bytes, one request for a small object, If-Match."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import NotFound
from gateway.storage.local import LocalStore
from tests.engine.support import MiB, data_of, make_view, ranges, read_key, read_range
from tests.memorystore import MemoryStore


@pytest.mark.parametrize("size", [1, MiB - 1, MiB, MiB + 1, 5 * MiB + 17])
async def test_a_whole_read_yields_exactly_the_object(size: int) -> None:
    store = MemoryStore()
    data = data_of(size)
    store.put_sync("k", data)
    view = make_view(store)
    assert await read_key(view, "k") == data


async def test_ranges_at_any_offset_yield_exactly_those_bytes() -> None:
    store = MemoryStore()
    data = data_of(7 * MiB + 3)
    info = store.put_sync("k", data)
    view = make_view(store)
    async with await view.open("k", info) as read:
        for start, end in [
            (0, 1),
            (MiB - 1, MiB + 1),
            (3 * MiB + 5, 6 * MiB + 7),
            (7 * MiB, 7 * MiB + 3),
            (0, 7 * MiB + 3),
            (100, 100),
        ]:
            assert await read_range(read, start, end) == data[start:end]


async def test_a_range_past_the_end_is_clamped_to_the_object() -> None:
    store = MemoryStore()
    info = store.put_sync("k", b"0123456789")
    view = make_view(store)
    async with await view.open("k", info) as read:
        assert await read_range(read, 5, 1000) == b"56789"
        assert await read_range(read, 20, 30) == b""


async def test_a_small_object_costs_exactly_one_store_request() -> None:
    store = MemoryStore()
    info = store.put_sync("small", b"hello world", "text/plain")
    view = make_view(store)
    async with await view.open("small") as read:
        assert read.info.size == 11
        assert read.info.etag == info.etag
        assert read.info.content_type == "text/plain"
        assert await read_range(read, 0, read.info.size) == b"hello world"
    assert sum(store.calls.values()) == 1
    assert ranges(store) == [(0, 11, None)]


async def test_the_first_request_takes_the_metadata_of_a_large_object_from_a_ranged_get() -> None:
    store = MemoryStore()
    info = store.put_sync("big", data_of(3 * MiB))
    view = make_view(store)
    async with await view.open("big") as read:
        assert read.info == info
    assert store.calls == {"get": 1}
    assert ranges(store) == [(0, MiB, None)]


async def test_a_second_read_of_a_small_object_is_served_from_the_cache() -> None:
    store = MemoryStore()
    store.put_sync("small", b"hello")
    view = make_view(store)
    assert await read_key(view, "small") == b"hello"
    assert await read_key(view, "small") == b"hello"
    assert store.calls == {"get": 1}
    assert view.engine.counters.block_hits >= 1


async def test_every_ranged_get_after_the_first_carries_if_match() -> None:
    store = MemoryStore()
    data = data_of(20 * MiB)
    info = store.put_sync("big", data)
    view = make_view(store)
    assert await read_key(view, "big") == data
    got = ranges(store, "big")
    assert got[0] == (0, MiB, None)
    assert len(got) > 2
    assert all(if_match == info.etag for _, _, if_match in got[1:])


async def test_a_read_opened_with_known_metadata_uses_if_match_from_the_start() -> None:
    store = MemoryStore()
    data = data_of(2 * MiB)
    info = store.put_sync("k", data)
    view = make_view(store)
    async with await view.open("k", info) as read:
        assert await read_range(read, 0, info.size) == data
    assert ranges(store) and all(m == info.etag for _, _, m in ranges(store))


async def test_a_zero_byte_object_reads_as_empty_in_one_request() -> None:
    store = MemoryStore()
    store.put_sync("empty", b"")
    view = make_view(store)
    async with await view.open("empty") as read:
        assert read.info.size == 0
        assert await read_range(read, 0, 0) == b""
    assert store.calls == {"get": 1}
    assert view.engine.budget.in_use == 0


async def test_a_zero_byte_file_of_a_local_folder_reads_as_empty(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "data").write_bytes(data_of(3 * MiB + 1))
    view = make_view(LocalStore(tmp_path))
    async with await view.open("empty") as read:
        assert read.info.size == 0
        assert await read_range(read, 0, 0) == b""
    assert await read_key(view, "data") == data_of(3 * MiB + 1)


async def test_opening_a_missing_key_raises_not_found_and_is_remembered() -> None:
    store = MemoryStore()
    view = make_view(store)
    with pytest.raises(NotFound):
        await view.open("nope")
    with pytest.raises(NotFound):
        await view.open("nope")
    with pytest.raises(NotFound):
        await view.stat("nope")
    assert store.calls == {"get": 1}
    assert view.engine.budget.in_use == 0


async def test_a_short_read_after_a_seek_fetches_only_its_bytes() -> None:
    store = MemoryStore()
    data = data_of(8 * MiB)
    info = store.put_sync("k", data)
    view = make_view(store)
    start, end = 5 * MiB + 100, 5 * MiB + 100 + 64 * 1024
    async with await view.open("k", info) as read:
        assert await read_range(read, start, end) == data[start:end]
    assert ranges(store) == [(start, end, info.etag)]
    assert view.engine.counters.exact_reads == 1
    assert view.engine.budget.in_use == 0  # the private block is never cached


async def test_a_short_read_uses_blocks_that_are_already_cached() -> None:
    store = MemoryStore()
    data = data_of(3 * MiB)
    info = store.put_sync("k", data)
    view = make_view(store)
    async with await view.open("k", info) as read:
        assert await read_range(read, 0, 2 * MiB) == data[: 2 * MiB]
    fetched = len(ranges(store))
    async with await view.open("k", info) as read:
        assert await read_range(read, MiB + 10, MiB + 20) == data[MiB + 10 : MiB + 20]
    assert len(ranges(store)) == fetched
    assert view.engine.counters.exact_reads == 0


async def test_a_short_read_of_a_replaced_object_raises_object_changed() -> None:
    from gateway.errors import ObjectChanged

    store = MemoryStore()
    info = store.put_sync("k", data_of(4 * MiB))
    store.put_sync("k", data_of(4 * MiB, seed=1))
    view = make_view(store)
    async with await view.open("k", info) as read:
        with pytest.raises(ObjectChanged):
            await read_range(read, 2 * MiB, 2 * MiB + 10)
    assert view.engine.budget.in_use == 0

"""The disk cache tier (``--cache``): its file format, what it refuses to serve, LRU
eviction under its cap, reuse after a restart, and a private directory owned by one
process at a time."""

from __future__ import annotations

import gc
import os
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest

from gateway.engine import StoreView, diskcache
from gateway.engine.blockfile import (
    BadBlockFile,
    BlockId,
    decode,
    encode,
    encode_pieces,
    file_name,
)
from gateway.engine.blocks import BlockCache
from gateway.engine.budget import MemoryBudget
from gateway.engine.counters import Counters
from gateway.engine.diskcache import FREE_SHARE, CacheDirRefused, DiskCache
from gateway.engine.readahead import window_cap
from gateway.engine.tuning import Tuning
from gateway.ops.metrics import GatewayCollector, Metrics
from gateway.settings import SettingsError, load_settings
from gateway.storage.base import ObjectInfo
from tests.engine.support import MiB, data_of, make_view, read_key, read_range
from tests.integration.test_disk_cache import theirs
from tests.memorystore import MemoryStore

BLOCK = BlockId("memory://memory", "dir/model.bin", '"etag-1"', 3)


# ---- the file format -----------------------------------------------------------------------
def test_a_block_file_gives_back_its_bytes() -> None:
    data = data_of(1000)
    raw = encode(BLOCK, [data[:10], data[10:]])
    assert decode(raw, BLOCK, 1000) == data


def test_a_block_file_is_written_from_the_blocks_own_bytes() -> None:
    """The writer hands the block's chunks to the kernel as they are (no joined copy of a
    1 MiB block per write), and the pieces make exactly the file ``encode`` describes."""
    chunks = [data_of(1000)[:10], data_of(1000)[10:]]
    pieces = encode_pieces(BLOCK, chunks)
    assert pieces[1] is chunks[0] and pieces[2] is chunks[1]
    assert b"".join(pieces) == encode(BLOCK, chunks)


@pytest.mark.parametrize("position", [0, 9, 20, 40, 500, -5, -1])
def test_a_flipped_byte_anywhere_is_refused(position: int) -> None:
    raw = bytearray(encode(BLOCK, [data_of(1000)]))
    raw[position] ^= 0x01
    with pytest.raises(BadBlockFile):
        decode(bytes(raw), BLOCK, 1000)


@pytest.mark.parametrize("keep", [0, 10, 40, 600, -1])
def test_a_truncated_file_is_refused(keep: int) -> None:
    raw = encode(BLOCK, [data_of(1000)])
    with pytest.raises(BadBlockFile):
        decode(raw[:keep], BLOCK, 1000)


@pytest.mark.parametrize("other", [
    BlockId("memory://other", BLOCK.key, BLOCK.etag, BLOCK.index),
    BlockId(BLOCK.store, "dir/model.bim", BLOCK.etag, BLOCK.index),
    BlockId(BLOCK.store, BLOCK.key, '"etag-2"', BLOCK.index),
    BlockId(BLOCK.store, BLOCK.key, BLOCK.etag, 4),
])
def test_another_blocks_file_is_refused(other: BlockId) -> None:
    raw = encode(other, [data_of(1000)])
    with pytest.raises(BadBlockFile, match="another block"):
        decode(raw, BLOCK, 1000)


def test_a_file_of_another_length_is_refused() -> None:
    with pytest.raises(BadBlockFile):
        decode(encode(BLOCK, [data_of(1000)]), BLOCK, 999)


def test_file_names_differ_for_every_part_of_the_identity() -> None:
    names = {file_name(BLOCK), file_name(BlockId("x", BLOCK.key, BLOCK.etag, 3)),
             file_name(BlockId(BLOCK.store, "k", BLOCK.etag, 3)),
             file_name(BlockId(BLOCK.store, BLOCK.key, "e", 3)),
             file_name(BlockId(BLOCK.store, BLOCK.key, BLOCK.etag, 4))}
    assert len(names) == 5
    # The first half names the object: every block of one key shares it.
    assert file_name(BLOCK)[:32] == file_name(BlockId(BLOCK.store, BLOCK.key, "e", 9))[:32]


# ---- the tier behind an engine ------------------------------------------------------------
def cached_view(store: MemoryStore, directory: Path, max_size: int | None = None,
                **disk: int) -> tuple[StoreView, DiskCache]:
    view = make_view(store)
    disk.setdefault("max_pending_bytes", 1 << 40)  # the store is instant: let writes queue
    cache = DiskCache(directory, max_size if max_size is not None else 1 << 40, **disk)
    view.engine.blocks.use_disk(cache)
    return view, cache


async def settled(view: StoreView) -> None:
    await view.engine.wait_idle()
    disk = view.engine.blocks.disk
    assert disk is not None
    await disk.flush()


async def restart(view: StoreView, directory: Path, **disk: int) -> tuple[StoreView, DiskCache]:
    """A new process: a fresh engine (nothing in memory) over the same directory."""
    await settled(view)
    old = view.engine.blocks.disk
    assert old is not None
    await view.engine.close()
    await old.close()
    return cached_view(view.store, directory, **disk)  # type: ignore[arg-type]


async def test_a_second_read_after_the_memory_cache_is_cleared_costs_the_store_nothing(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    data = data_of(20 * MiB + 123)
    store.put_sync("big", data)
    view, disk = cached_view(store, tmp_path / "cache")
    assert await read_key(view, "big") == data
    await settled(view)
    assert len(disk) == 21
    served, gets = store.bytes_served, store.calls["get"]
    view.engine.drop_cache()
    assert await read_key(view, "big") == data
    assert store.bytes_served == served and store.calls["get"] == gets
    counters = view.engine.counters
    assert counters.disk_cache_hits == 21
    assert counters.disk_cache_read_bytes == len(data)


async def test_blocks_of_unchanged_objects_are_used_after_a_restart(tmp_path: Path) -> None:
    store = MemoryStore()
    data = data_of(12 * MiB)
    store.put_sync("big", data)
    view, _ = cached_view(store, tmp_path / "cache")
    assert await read_key(view, "big") == data
    served, gets = store.bytes_served, store.calls["get"]
    view, _ = await restart(view, tmp_path / "cache")
    assert await read_key(view, "big") == data
    assert store.bytes_served == served and store.calls["get"] == gets
    assert store.calls["head"] == 1  # the etag that names the files: no GET of block 0
    assert view.engine.counters.disk_cache_hits == 12


async def test_a_short_read_after_a_seek_is_served_from_disk(tmp_path: Path) -> None:
    store = MemoryStore()
    data = data_of(8 * MiB)
    store.put_sync("big", data)
    view, _ = cached_view(store, tmp_path / "cache")
    await read_key(view, "big")
    view, _ = await restart(view, tmp_path / "cache")
    gets = store.calls["get"]
    start = 5 * MiB + 10
    async with await view.open("big") as read:
        assert await read_range(read, start, start + 4096) == data[start : start + 4096]
    assert store.calls["get"] == gets  # not an exact ranged GET: the block is on disk


async def test_a_replaced_object_is_read_from_the_store_after_a_restart(tmp_path: Path) -> None:
    store = MemoryStore()
    store.put_sync("big", data_of(4 * MiB, seed=1))
    view, _ = cached_view(store, tmp_path / "cache")
    await read_key(view, "big")
    new = data_of(4 * MiB, seed=2)
    store.put_sync("big", new)
    view, _ = await restart(view, tmp_path / "cache")
    served = store.bytes_served
    assert await read_key(view, "big") == new
    assert store.bytes_served - served == len(new)
    assert view.engine.counters.disk_cache_hits == 0


def block_file(view: StoreView, key: str, index: int) -> Path:
    disk = view.engine.blocks.disk
    assert disk is not None
    info = view.meta.info(key)
    assert isinstance(info, ObjectInfo)
    return disk.path_of(BlockId(view.store.description, key, info.etag, index))


def flip(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 100)


@pytest.mark.parametrize("damage", [flip, truncate], ids=["flipped", "truncated"])
async def test_a_damaged_file_is_dropped_and_its_block_refetched(
    tmp_path: Path, damage: object
) -> None:
    store = MemoryStore()
    data = data_of(6 * MiB)
    store.put_sync("big", data)
    view, disk = cached_view(store, tmp_path / "cache")
    assert await read_key(view, "big") == data
    await settled(view)
    damaged = block_file(view, "big", 3)
    damage(damaged)  # type: ignore[operator]
    view.engine.drop_cache()
    served = store.bytes_served
    assert await read_key(view, "big") == data
    assert store.bytes_served - served == MiB  # that block alone, from the store
    assert view.engine.counters.disk_cache_errors == 1
    await settled(view)
    # Rewritten from the store's bytes: the next read is whole from disk again.
    view.engine.drop_cache()
    assert await read_key(view, "big") == data
    assert store.bytes_served - served == MiB
    assert len(disk) == 6


async def test_another_blocks_file_under_a_blocks_name_is_never_served(tmp_path: Path) -> None:
    store = MemoryStore()
    data = data_of(4 * MiB)
    store.put_sync("big", data)
    view, _ = cached_view(store, tmp_path / "cache")
    await read_key(view, "big")
    await settled(view)
    shutil.copyfile(block_file(view, "big", 1), block_file(view, "big", 2))  # same size
    view, _ = await restart(view, tmp_path / "cache")
    served = store.bytes_served
    assert await read_key(view, "big") == data
    assert store.bytes_served - served == MiB
    assert view.engine.counters.disk_cache_errors == 1


async def read_past_a_slow_writer(
    store: MemoryStore, directory: Path, settle: bool = True
) -> tuple[StoreView, DiskCache, bytes]:
    """16 MiB read at memory speed past a writer that takes one block at a time; then,
    unless told not to, the writer is given time to catch up."""
    data = data_of(16 * MiB)
    store.put_sync("big", data)
    view, disk = cached_view(store, directory, max_pending_bytes=MiB + 1000)
    assert await read_key(view, "big") == data
    if settle:
        await settled(view)
    return view, disk, data


def in_memory(view: StoreView, key: str, blocks: int) -> set[int]:
    """The indexes of the blocks of ``key`` the memory cache holds."""
    info = view.meta.info(key)
    assert isinstance(info, ObjectInfo)
    return {i for i in range(blocks)
            if view.engine.blocks.get(view.block_key(key, info.etag, i)) is not None}


def on_disk(view: StoreView, key: str, blocks: int) -> set[int]:
    """The indexes of the blocks of ``key`` that have a file in the disk cache."""
    return {i for i in range(blocks) if block_file(view, key, i).exists()}


async def test_a_slow_writer_drops_writes_instead_of_slowing_the_reader(
    tmp_path: Path,
) -> None:
    view, disk, _ = await read_past_a_slow_writer(MemoryStore(), tmp_path / "cache")
    counters = view.engine.counters
    assert counters.disk_cache_dropped_writes > 0
    assert len(disk) == 16 - counters.disk_cache_dropped_writes + counters.disk_cache_late_writes
    assert view.engine.budget.in_use <= view.engine.blocks.cached_bytes  # pending released


async def test_dropped_blocks_the_memory_cache_still_holds_are_written_once_the_writer_has_room(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    view, _, data = await read_past_a_slow_writer(store, tmp_path / "cache")
    held = in_memory(view, "big", 16)
    written = on_disk(view, "big", 16)
    assert view.engine.counters.disk_cache_late_writes > 0
    assert held and held <= written  # all the memory cache holds reached the disk late
    # The blocks evicted from memory before the writer had room are not written: their bytes
    # were gone (never an empty or partial file in their place).
    assert written != set(range(16))
    view, _ = await restart(view, tmp_path / "cache")
    served = store.bytes_served
    assert await read_key(view, "big") == data
    assert store.bytes_served - served == (16 - len(written)) * MiB


async def test_shutdown_writes_the_owed_blocks_from_memory_before_it_lets_the_memory_go(
    tmp_path: Path,
) -> None:
    view, disk, _ = await read_past_a_slow_writer(MemoryStore(), tmp_path / "cache",
                                                  settle=False)
    held = in_memory(view, "big", 16)
    assert disk.counters.disk_cache_dropped_writes  # the writer is behind as the read ends
    await view.engine.close()  # at once, as a server stopping does: no time to settle
    await disk.close()
    assert held and held <= on_disk(view, "big", 16)


async def test_an_owed_block_is_written_later_only_if_its_bytes_are_still_held(
    tmp_path: Path,
) -> None:
    disk = DiskCache(tmp_path / "cache", max_pending_bytes=MiB + 1000)
    busy, held, gone = (BlockId("s", key, "e", 0) for key in ("busy", "held", "gone"))
    assert disk.write_behind(busy, [data_of(MiB)])  # the writer's one slot is taken
    assert not disk.write_behind(gone, [data_of(MiB)], lambda: None)  # evicted meanwhile
    assert not disk.write_behind(held, [data_of(MiB)], lambda: [data_of(MiB)])
    await disk.flush()
    assert disk.has(busy) and disk.has(held) and not disk.has(gone)
    assert (disk.counters.disk_cache_dropped_writes, disk.counters.disk_cache_late_writes) == (2, 1)
    assert await disk.read(held, MiB) == data_of(MiB)
    await disk.close()


async def test_a_failed_write_still_gives_its_room_to_an_owed_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails frees its writer as one that succeeds does: the block dropped
    while it ran is written then, not left for a later write that may never come."""
    store = diskcache._store

    def failing_for_busy(path: Path, block: BlockId, chunks: list[bytes],
                         victims: list[Path]) -> None:
        if block.key == "busy":
            raise OSError("disk full")
        store(path, block, chunks, victims)

    monkeypatch.setattr(diskcache, "_store", failing_for_busy)
    disk = DiskCache(tmp_path / "cache", max_pending_bytes=MiB + 1000)
    busy, held = BlockId("s", "busy", "e", 0), BlockId("s", "held", "e", 0)
    assert disk.write_behind(busy, [data_of(MiB)])  # the writers' one slot is taken
    assert not disk.write_behind(held, [data_of(MiB)], lambda: [data_of(MiB)])
    await disk.flush()
    assert not disk.has(busy) and disk.has(held)
    assert disk.counters.disk_cache_errors == 1 and disk.counters.disk_cache_late_writes == 1
    await disk.close()


async def test_a_whole_read_ahead_window_landing_at_once_is_queued_not_dropped(
    tmp_path: Path,
) -> None:
    budget = MemoryBudget(64 * MiB)
    disk = DiskCache(tmp_path / "cache")
    disk.attach(budget, Counters())
    window = window_cap(Tuning(), budget.limit)  # a lone reader's: a quarter of the budget
    blocks = window // MiB
    assert all(disk.write_behind(BlockId("s", "big", "e", i), [data_of(MiB)])
               for i in range(blocks))
    await disk.flush()
    assert len(disk) == blocks and disk.counters.disk_cache_dropped_writes == 0
    await disk.close()


def test_a_block_offers_its_bytes_for_later_only_while_the_cache_holds_it() -> None:
    budget = MemoryBudget(8 * MiB)
    cache = BlockCache(budget, 8 * MiB, Counters())
    block = cache.create(("v", "k", "e", 0), 0, 1000, budget.try_acquire(1000))
    later = block.later()
    assert later() is None  # still arriving
    block.append(b"x" * 1000)
    assert later() == [b"x" * 1000]
    cache.retire(block)  # evicted or replaced: no longer the cache's, though still alive here
    assert later() is None
    del block
    gc.collect()
    assert later() is None  # a weak reference: it kept nothing alive


# ---- eviction ------------------------------------------------------------------------------
def blk(key: str) -> BlockId:
    return BlockId("s", key, "e", 0)


async def write(disk: DiskCache, *keys: str) -> None:
    for key in keys:
        assert disk.write_behind(blk(key), [data_of(1000)])
        await disk.flush()


async def test_least_recently_used_files_go_first_and_the_cap_holds(tmp_path: Path) -> None:
    size = DiskCache(tmp_path / "probe", 1 << 30)
    one = len(encode(blk("a"), [data_of(1000)]))
    await size.close()
    disk = DiskCache(tmp_path / "cache", 3 * one)
    await write(disk, "a", "b", "c")
    assert await disk.read(blk("a"), 1000) is not None  # a is now the most recent
    await write(disk, "d")
    await write(disk, "e")
    assert [disk.has(blk(k)) for k in "abcde"] == [True, False, False, True, True]
    assert disk.counters.disk_cache_evictions == 2
    await disk.close()  # the evicted files are gone from the disk too
    files = list((tmp_path / "cache" / "blocks").rglob("*.blk"))
    assert len(files) == 3 and sum(f.stat().st_size for f in files) <= 3 * one


async def test_a_slow_write_does_not_hold_up_the_write_of_another_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two writes under way at once: each waits for the other before it finishes, which
    only two writers can do (one would time out and count an error)."""
    both = threading.Barrier(2, timeout=5)
    store = diskcache._store

    def meeting_the_other(path: Path, block: BlockId, chunks: list[bytes],
                          victims: list[Path]) -> None:
        both.wait()
        store(path, block, chunks, victims)

    monkeypatch.setattr(diskcache, "_store", meeting_the_other)
    disk = DiskCache(tmp_path / "cache", max_pending_bytes=MiB)
    assert disk.write_behind(blk("a"), [data_of(1000)])  # a and b under way at once
    assert disk.write_behind(blk("b"), [data_of(1000)])
    await disk.flush()
    assert disk.has(blk("a")) and disk.has(blk("b"))
    assert disk.counters.disk_cache_errors == 0
    await disk.close()


async def test_a_name_evicted_and_written_again_keeps_its_new_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name whose old file is still being removed is written once the removal is done
    (owed meanwhile), however slow the removal: never at once on the other writer, where
    the removal could delete the new file."""
    remove = diskcache._remove

    def slowly(path: Path) -> None:
        time.sleep(0.2)
        remove(path)

    monkeypatch.setattr(diskcache, "_remove", slowly)
    one = len(encode(blk("b"), [data_of(1000)]))
    disk = DiskCache(tmp_path / "cache", one, max_pending_bytes=MiB)  # room for one file
    await write(disk, "b")
    assert disk.write_behind(blk("a"), [data_of(1000)])  # removes b first, slowly
    assert not disk.write_behind(blk("b"), [data_of(1000)], lambda: [data_of(1000)])
    await disk.close()
    assert disk.counters.disk_cache_late_writes == 1
    again = DiskCache(tmp_path / "cache")
    assert again.has(blk("b")) and await again.read(blk("b"), 1000) == data_of(1000)
    await again.close()


async def test_the_access_order_survives_a_restart(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path / "cache", 1 << 30)
    await write(disk, "a", "b", "c")
    for age, key in ((300, "b"), (200, "c"), (100, "a")):  # oldest b, then c, then a
        path = disk.path_of(blk(key))
        past = path.stat().st_mtime - age
        os.utime(path, (past, past))
    await disk.close()
    again = DiskCache(tmp_path / "cache")
    cap = again.used
    await again.close()
    again = DiskCache(tmp_path / "cache", cap - 1)  # one file too many: b goes
    assert [again.has(blk(k)) for k in "abc"] == [True, False, True]
    await again.close()


async def test_short_writes_are_finished_and_the_file_is_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def at_most_100_bytes(fd: int, pieces: list[memoryview]) -> int:
        return os.write(fd, bytes(pieces[0][:100]))  # the kernel may write less than asked

    monkeypatch.setattr(os, "writev", at_most_100_bytes)
    disk = DiskCache(tmp_path / "cache")
    chunks = [data_of(1000), data_of(10)[:3], data_of(700)]
    assert disk.write_behind(blk("a"), chunks)
    await disk.flush()
    assert await disk.read(blk("a"), 1703) == b"".join(chunks)
    await disk.close()


async def test_a_removed_shard_directory_is_made_again(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path / "cache")
    shutil.rmtree(disk.path_of(blk("a")).parent)
    await write(disk, "a")
    assert await disk.read(blk("a"), 1000) == data_of(1000)
    await disk.close()


async def test_a_write_cut_by_a_crash_is_cleared_at_start(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path / "cache")
    await write(disk, "a")
    path = disk.path_of(blk("a"))
    await disk.close()
    half = path.with_name(path.name + ".tmp")
    half.write_bytes(path.read_bytes()[:100])  # the writer died before its rename
    again = DiskCache(tmp_path / "cache")
    assert not half.exists() and len(again) == 1
    assert await again.read(blk("a"), 1000) == data_of(1000)
    await again.close()


async def test_the_default_size_leaves_five_percent_of_the_disk_free(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path / "cache")
    st = os.statvfs(tmp_path)
    expected = st.f_bavail * st.f_frsize - st.f_blocks * st.f_frsize // FREE_SHARE
    assert abs(disk.max_size - max(0, expected)) < 64 * MiB  # others write meanwhile
    await disk.close()


# ---- the directory -----------------------------------------------------------------------
async def test_the_directory_is_created_private(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path / "new")
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    await disk.close()


async def test_a_directory_open_to_others_is_refused(tmp_path: Path) -> None:
    (tmp_path / "open").mkdir(mode=0o755)
    os.chmod(tmp_path / "open", 0o755)
    with pytest.raises(CacheDirRefused, match="open to other users"):
        DiskCache(tmp_path / "open")


async def test_a_directory_of_another_owner_is_refused(tmp_path: Path) -> None:
    cache, owner = theirs(tmp_path)
    with pytest.raises(CacheDirRefused, match=f"belongs to uid {owner}"):
        DiskCache(cache)


async def test_one_process_at_a_time(tmp_path: Path) -> None:
    first = DiskCache(tmp_path / "cache")
    with pytest.raises(CacheDirRefused, match=f"pid {os.getpid()}"):
        DiskCache(tmp_path / "cache")
    with pytest.raises(CacheDirRefused, match="in use"):
        DiskCache(tmp_path / "cache", worker=0, workers=2)  # workers: not beside it
    await first.close()
    second = DiskCache(tmp_path / "cache")  # given up at close
    await second.close()


async def test_workers_each_take_their_own_subdirectory(tmp_path: Path) -> None:
    zero = DiskCache(tmp_path / "cache", worker=0, workers=2)
    one = DiskCache(tmp_path / "cache", worker=1, workers=2)
    assert zero.root == tmp_path / "cache" / "worker-0"
    assert stat.S_IMODE(one.root.stat().st_mode) == 0o700
    with pytest.raises(CacheDirRefused, match="worker-1 is in use"):
        DiskCache(tmp_path / "cache", worker=1, workers=2)
    with pytest.raises(CacheDirRefused, match="in use"):
        DiskCache(tmp_path / "cache")  # a single process: not beside workers
    await zero.close()
    await one.close()


# ---- settings and metrics -------------------------------------------------------------------
def test_cache_options_come_from_flags_env_and_file(tmp_path: Path) -> None:
    env = {"BUCKETDAV_CACHE": "rel/cache", "BUCKETDAV_MAX_CACHE_SIZE": "20G"}
    engine = load_settings({}, str(tmp_path), env=env).engine
    assert engine.cache == os.path.abspath("rel/cache")
    assert engine.max_cache_size == 20 << 30
    assert load_settings({}, str(tmp_path), env={}).engine.cache is None
    with pytest.raises(SettingsError, match="--max-cache-size needs --cache"):
        load_settings({"max_cache_size": "1G"}, str(tmp_path), env={})


async def test_the_tier_is_measured(tmp_path: Path) -> None:
    store = MemoryStore()
    store.put_sync("big", data_of(3 * MiB))
    view, _ = cached_view(store, tmp_path / "cache")
    await read_key(view, "big")
    await settled(view)
    view.engine.drop_cache()
    await read_key(view, "big")
    metrics = Metrics()
    metrics.registry.register(GatewayCollector(metrics, view.engine))
    samples = {s.name: s.value for m in metrics.registry.collect() for s in m.samples}
    assert samples["bucketdav_disk_cache_hits_total"] == 3
    assert samples["bucketdav_disk_cache_written_bytes_total"] > 3 * MiB
    assert samples["bucketdav_disk_cache_bytes"] > 3 * MiB
    assert "bucketdav_disk_cache_evictions_total" in samples
    assert "bucketdav_engine_disk_cache_hits_total" not in samples

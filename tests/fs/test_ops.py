"""Namespace writes: exact prefixes, batches, caps, failures, and caches that stay true."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.engine import Engine
from gateway.errors import Conflict, NotFound, Upstream
from gateway.fs import ops
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.settings import EngineSettings, Policy, ShareSettings, Source
from gateway.storage.base import ObjectStore
from tests.memorystore import MemoryStore
from tests.webdav.writing import keys, read, store_fixture

store = store_fixture("memory", "local", "moto")


def share_on(store: ObjectStore, prefix: str = "", policy: Policy | None = None) -> Share:
    engine = Engine(EngineSettings(metadata_ttl=60))
    settings = ShareSettings("/", Source("s3", "bucket", prefix), policy=policy or Policy())
    return Share(settings, engine.view(store))


def p(text: str) -> DavPath:
    parts = tuple(x for x in text.split("/") if x)
    return DavPath(parts, text.endswith("/"))


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def names(share: Share, path: str) -> list[str]:
    return [entry.name async for entry in share.listdir(p(path))]


async def arrange(store: ObjectStore, *keys_: str) -> None:
    for key in keys_:
        await store.put(key, b"" if key.endswith("/") else key.encode())


# ---- caches stay true ---------------------------------------------------------------


async def test_a_written_file_is_seen_at_once_by_stat_and_listing(store: ObjectStore) -> None:
    share = share_on(store)
    with pytest.raises(NotFound):
        await share.stat(p("new.txt"))  # now cached as missing
    assert await names(share, "/") == []  # the listing is cached too
    await ops.write_file(share, p("new.txt"), body(b"hello"))
    entry = await share.stat(p("new.txt"))
    assert entry.size == 5 and not entry.is_dir
    assert await names(share, "/") == ["new.txt"]


async def test_a_new_collection_is_seen_at_once(store: ObjectStore) -> None:
    share = share_on(store)
    assert not await share.is_dir(p("d/"))
    await ops.mkdir(share, p("d/"))
    assert await share.is_dir(p("d/"))
    assert "d/" in await keys(store)
    assert await names(share, "/") == ["d"]


async def test_a_deleted_tree_is_gone_at_once(store: ObjectStore) -> None:
    await arrange(store, "d/", "d/a", "d/sub/", "d/sub/b")
    share = share_on(store)
    assert await names(share, "/d/") == ["a", "sub"]
    assert (await share.stat(p("d/a"))).size == 3
    assert await ops.delete_tree(share, p("d/")) == {}
    assert not await share.is_dir(p("d/"))
    with pytest.raises(NotFound):
        await share.stat(p("d/a"))
    assert await names(share, "/") == []


# ---- exact prefixes -------------------------------------------------------------------


async def test_delete_tree_touches_only_the_exact_prefix(store: ObjectStore) -> None:
    await arrange(store, "dir/", "dir/a", "dir/sub/", "dir/sub/b", "dir2/", "dir2/c", "dir-x",
                  "dir.txt")
    share = share_on(store)
    assert await ops.delete_tree(share, p("dir/")) == {}
    left = await keys(store)
    assert not any(k.startswith("dir/") for k in left)
    assert {"dir2/c", "dir-x", "dir.txt"} <= left


async def test_nothing_outside_the_share_prefix_is_touched() -> None:
    store = MemoryStore()
    await arrange(store, "share/d/a", "share/d/b", "shared/d/a", "other/d/a", "share/dx")
    share = share_on(store, prefix="share/")
    assert await ops.delete_tree(share, p("d/")) == {}
    assert set(store.objects) == {"shared/d/a", "other/d/a", "share/dx"}


async def test_copy_and_move_tree_keep_markers_and_the_exact_prefix(store: ObjectStore) -> None:
    await arrange(store, "src/", "src/a", "src/sub/", "src/sub/b", "src2")
    share = share_on(store)
    failed, _ = await ops.copy_tree(share, p("src/"), p("copy/"))
    assert failed == {}
    assert {"copy/", "copy/a", "copy/sub/", "copy/sub/b"} <= await keys(store, "copy/")
    assert await read(store, "copy/sub/b") == b"src/sub/b"
    assert await ops.move_tree(share, p("copy/"), p("moved/")) == {}
    assert await keys(store, "copy/") == set()
    assert {"moved/", "moved/a", "moved/sub/", "moved/sub/b"} <= await keys(store, "moved/")
    assert "src2" in await keys(store)


async def test_copy_with_depth_0_copies_only_the_collection() -> None:
    store = MemoryStore()
    await arrange(store, "src/", "src/a")
    share = share_on(store)
    await ops.copy_tree(share, p("src/"), p("dst/"), shallow=True)
    assert set(store.objects) == {"src/", "src/a", "dst/"}


# ---- batches, caps and failures -------------------------------------------------------


class RecordingStore(MemoryStore):
    batches: list[int]

    async def delete_many(self, keys: list[str]) -> dict[str, str]:
        self.batches = [*getattr(self, "batches", []), len(keys)]
        return await super().delete_many(keys)


async def test_deletes_are_batched_at_most_1000_keys_per_call() -> None:
    store = RecordingStore()
    for i in range(2500):
        store.put_sync(f"big/{i:05}", b"x")
    store.put_sync("big/", b"")
    assert await ops.delete_tree(share_on(store), p("big/")) == {}
    assert store.objects == {}
    assert max(store.batches) <= 1000
    assert sum(store.batches) == 2501


async def test_a_tree_past_the_cap_is_refused_and_nothing_is_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ops, "MAX_TREE", 10)
    store = MemoryStore()
    for i in range(11):
        store.put_sync(f"big/{i}", b"x")
    with pytest.raises(ops.TooManyObjects, match="more than 10 objects"):
        await ops.delete_tree(share_on(store), p("big/"))
    assert len(store.objects) == 11
    assert store.calls["delete_many"] == 0


async def test_members_that_fail_to_delete_are_reported_the_rest_is_deleted() -> None:
    store = MemoryStore()
    await arrange(store, "d/", "d/a", "d/b", "d/c")
    store.fail("delete_one", Upstream("AccessDenied"), key="d/b")
    failed = await ops.delete_tree(share_on(store), p("d/"))
    assert list(failed) == ["d/b"]
    assert "AccessDenied" in failed["d/b"].message
    assert set(store.objects) == {"d/b"}


async def test_a_failed_copy_keeps_its_source_during_a_move() -> None:
    store = MemoryStore()
    await arrange(store, "d/", "d/a", "d/b")
    store.fail("copy", Upstream("copy failed"), key="d/b")
    failed = await ops.move_tree(share_on(store), p("d/"), p("e/"))
    assert list(failed) == ["d/b"]
    assert set(store.objects) == {"d/b", "e/", "e/a"}


async def test_moving_an_empty_file_writes_anew_and_copies_nothing() -> None:
    store = MemoryStore()
    store.put_sync("empty", b"", "text/plain")
    share = share_on(store)
    info = await share.view.stat("empty")
    await ops.transfer_file(share, p("empty"), p("renamed"), info, move=True)
    assert set(store.objects) == {"renamed"}
    assert store.objects["renamed"].info.content_type == "text/plain"
    assert store.calls["copy"] == 0


async def test_moving_a_file_with_data_is_a_copy_and_a_delete(store: ObjectStore) -> None:
    await arrange(store, "f")
    share = share_on(store)
    info = await share.view.stat("f")
    await ops.transfer_file(share, p("f"), p("g"), info, move=True)
    assert await keys(store) == {"g"}
    assert await read(store, "g") == b"f"
    with pytest.raises(NotFound):
        await share.stat(p("f"))


# ---- client noise -----------------------------------------------------------------------


async def test_client_noise_is_held_in_the_noise_area_and_never_stored() -> None:
    store = MemoryStore()
    share = share_on(store)
    info = await ops.write_file(share, p("._photo.jpg"), body(b"apple double"))
    assert store.objects == {} and store.calls["put"] == 0
    entry = await share.stat(p("._photo.jpg"))
    assert entry.size == len(b"apple double") and entry.etag == info.etag
    assert await names(share, "/") == []
    await ops.delete_file(share, p("._photo.jpg"))
    with pytest.raises(NotFound):
        await share.stat(p("._photo.jpg"))
    assert store.calls["head"] == 0


async def test_client_noise_is_stored_when_the_share_says_so() -> None:
    store = MemoryStore()
    share = share_on(store, policy=Policy(store_client_noise=True))
    await ops.write_file(share, p(".DS_Store"), body(b"finder"))
    assert store.objects[".DS_Store"].data == b"finder"


async def test_a_large_noise_body_is_accepted_and_dropped() -> None:
    share = share_on(MemoryStore())
    big = b"x" * (share.noise.max_body + 1)
    info = await ops.write_file(share, p("Thumbs.db"), body(big))
    held = await share.noise_file(p("Thumbs.db"))
    assert held is not None and held.data is None and info.size == len(big)
    with pytest.raises(Conflict):
        await ops.transfer_file(share, p("Thumbs.db"), p("thumbs.bin"), info, move=False)


async def test_noise_renamed_to_a_real_name_is_written_to_the_store() -> None:
    store = MemoryStore()
    share = share_on(store)
    info = await ops.write_file(share, p("._x"), body(b"data"))
    await ops.transfer_file(share, p("._x"), p("x.bin"), info, move=True)
    assert store.objects["x.bin"].data == b"data"
    assert await share.noise_file(p("._x")) is None

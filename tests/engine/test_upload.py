"""The streaming upload writer: whole objects only, bounded memory, nothing left behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from gateway.engine import Engine, StoreView, upload
from gateway.engine.upload import (
    CHUNK,
    S3_LIMITS,
    LengthMismatch,
    StoreLimits,
    announced_length,
    check_length,
    choose_part_size,
)
from gateway.errors import BadRequest, Exists, TooLarge, Upstream
from gateway.settings import EngineSettings
from gateway.storage.base import ObjectStore, UploadPart
from gateway.storage.s3 import S3Store
from tests.engine.support import stream, until
from tests.memorystore import MemoryStore
from tests.servers import moto_settings

MiB = 1024 * 1024
KiB = 1024


@dataclass
class SlowParts(MemoryStore):
    """Parts take a few loop turns to upload, so several are in flight at once."""

    in_flight: int = 0
    most_in_flight: int = 0
    lengths: list[int] = field(default_factory=list)  # of the parts, in upload order

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes
                          ) -> UploadPart:
        self.in_flight += 1
        self.lengths.append(len(data))
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            for _ in range(5):
                await asyncio.sleep(0)
            return await super().upload_part(key, upload_id, number, data)
        finally:
            self.in_flight -= 1


def view_of(store: ObjectStore, memory_target: int = 512, part: int = 5) -> StoreView:
    return Engine(EngineSettings(memory_target=memory_target, write_part_size=part)).view(store)


def pattern(size: int) -> bytes:
    """Bytes that differ per position, so a misplaced part is visible."""
    block = bytes(range(256)) * 4096  # 1 MiB
    return (block * (size // len(block) + 1))[:size]


async def stalled(data: bytes, gate: asyncio.Event, chunk: int = 64 * KiB
                  ) -> AsyncIterator[bytes]:
    """``data``, then wait for ``gate`` (forever, unless it is set), then end."""
    async for piece in stream(data, chunk):
        yield piece
    await gate.wait()


GiB = 1024 * MiB
TiB = 1024 * GiB
BUDGET = 512 * MiB


def test_part_size_grows_only_for_bodies_that_would_pass_10000_parts() -> None:
    assert choose_part_size(8 * MiB, None, BUDGET) == 8 * MiB
    assert choose_part_size(8 * MiB, 511 * MiB, BUDGET) == 8 * MiB
    huge = 200_000 * MiB
    assert choose_part_size(8 * MiB, huge, BUDGET) == -(-huge // 10_000)


def test_a_large_body_goes_in_parts_twice_the_base_when_the_budget_holds_them() -> None:
    # 64 base parts or more: fewer, larger parts (one request each), as many in flight.
    assert choose_part_size(8 * MiB, 512 * MiB, BUDGET) == 16 * MiB
    assert choose_part_size(8 * MiB, 1024 * MiB, BUDGET) == 16 * MiB
    assert choose_part_size(5 * MiB, 1024 * MiB, BUDGET) == 10 * MiB
    # A budget that holds the upload's parts in flight only at the base size keeps it.
    whole = (upload.MAX_IN_FLIGHT + 1) * (16 * MiB + CHUNK)
    assert choose_part_size(8 * MiB, 1024 * MiB, whole) == 16 * MiB
    assert choose_part_size(8 * MiB, 1024 * MiB, whole - 1) == 8 * MiB
    assert choose_part_size(8 * MiB, 1024 * MiB, 48 * MiB) == 8 * MiB


def test_the_part_size_is_capped_by_the_budget_and_by_the_stores_largest_part() -> None:
    # A part being filled holds the part and one chunk: both fit in the budget.
    assert choose_part_size(128 * MiB, None, 64 * MiB) == 64 * MiB - CHUNK
    assert choose_part_size(128 * MiB, 10 * GiB, 64 * MiB) == 64 * MiB - CHUNK
    assert choose_part_size(8 * GiB, None, 16 * GiB) == 5 * GiB - CHUNK
    # Grown for 10,000 parts, but no further than the need: the budget stays for others.
    assert choose_part_size(8 * MiB, 300 * GiB, 64 * MiB) == -(-300 * GiB // 10_000)


@pytest.mark.parametrize("announced", [5 * TiB + 1, 10**15])
def test_a_length_past_the_stores_largest_object_is_too_large(announced: int) -> None:
    with pytest.raises(TooLarge, match="maximum object size"):
        choose_part_size(8 * MiB, announced, BUDGET)
    assert choose_part_size(8 * MiB, 5 * TiB, 1 * GiB) == -(-5 * TiB // 10_000)


@pytest.mark.parametrize(
    ("announced", "budget", "refused"),
    [
        (10**12, 64 * MiB, True),  # parts of at least 100 MB
        (64 * MiB * 10_000, 64 * MiB, True),  # the part fits, but not with a chunk beside it
        ((64 * MiB - CHUNK) * 10_000, 64 * MiB, False),  # exactly fits
        (3 * MiB, 4 * MiB, False),  # one PutObject of its own size
        (4 * MiB + 1, 4 * MiB, True),
        (6 * MiB, 4 * MiB, True),  # parts of at least 5 MiB, the store's minimum
    ],
)
def test_a_length_whose_smallest_legal_part_cannot_fit_the_budget_is_too_large(
    announced: int, budget: int, refused: bool
) -> None:
    if refused:
        with pytest.raises(TooLarge, match="--memory-target"):
            choose_part_size(8 * MiB, announced, budget)
    else:
        assert choose_part_size(8 * MiB, announced, budget) * 10_000 >= announced


class Untouched:
    """A body that records whether anyone asked for its first chunk."""

    def __init__(self) -> None:
        self.asked = False

    async def chunks(self) -> AsyncIterator[bytes]:
        self.asked = True
        yield b"x"


@pytest.mark.parametrize(
    ("memory_target", "announced", "why"),
    [(512, 10**15, "maximum object size"), (64, 10**12, "--memory-target 128 or more")],
)
async def test_a_refused_length_is_refused_before_the_body_is_asked_for(
    memory_target: int, announced: int, why: str
) -> None:
    store = MemoryStore()
    view = view_of(store, memory_target=memory_target)
    body = Untouched()
    with pytest.raises(TooLarge, match=why):
        await view.write_stream("f", body.chunks(), expected_size=announced)
    assert not body.asked
    assert store.calls["create_upload"] == store.calls["put"] == 0
    assert view.engine.budget.peak == 0


class Discarding(MemoryStore):
    """Parts are hashed and dropped, so what the process holds is the writer's alone."""

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes
                          ) -> UploadPart:
        return await super().upload_part(key, upload_id, number, b"")


async def test_a_huge_announced_upload_buffers_no_byte_outside_the_budget() -> None:
    """Announced 200 GB: 20 MB parts in a 48 MiB budget. 100 MiB are sent and the client
    goes away. The bytes Python allocates meanwhile never pass what the budget counts
    (plus the chunk in the producer's hand)."""
    import tracemalloc

    store = Discarding()
    view = view_of(store, memory_target=48)
    budget = view.engine.budget
    data = pattern(100 * MiB)
    gate = asyncio.Event()
    overdrawn: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        async for piece in stream(data, CHUNK):
            yield piece
            used, _ = tracemalloc.get_traced_memory()
            if used - base > budget.in_use + 2 * CHUNK:
                overdrawn.append(used - base - budget.in_use)
        await gate.wait()

    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        task = asyncio.create_task(view.write_stream("f", body(), expected_size=200 * 10**9))
        await until(lambda: store.calls["upload_part"] >= 4, "four parts uploaded")
        await asyncio.sleep(0.05)
        _, peak = tracemalloc.get_traced_memory()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        tracemalloc.stop()
    assert overdrawn == []
    assert budget.peak <= budget.limit
    assert peak - base <= budget.peak + 4 * CHUNK
    assert budget.in_use == 0
    assert await store.list_uploads("") == []


async def test_with_a_budget_below_the_stores_smallest_part_only_one_part_bodies_pass() -> None:
    store = MemoryStore()
    view = view_of(store, memory_target=6)  # buffers: 4.5 MiB, less than 5 MiB and a read
    await view.write_stream("small", stream(pattern(3 * MiB)))
    assert store.objects["small"].data == pattern(3 * MiB)
    with pytest.raises(TooLarge, match="--memory-target"):
        await view.write_stream("big", stream(pattern(6 * MiB)))
    assert "big" not in store.objects
    assert await store.list_uploads("") == []
    assert view.engine.budget.in_use == 0


async def test_a_body_within_one_part_is_one_put() -> None:
    store = MemoryStore()
    info = await view_of(store).write_stream("a", stream(b"x" * 1000), content_type="text/x")
    assert store.objects["a"].data == b"x" * 1000
    assert info.size == 1000 and info.content_type == "text/x"
    assert store.calls["put"] == 1 and store.calls["create_upload"] == 0


async def test_a_small_body_of_known_length_reserves_only_its_length() -> None:
    store = MemoryStore()
    view = view_of(store)
    await view.write_stream("a", stream(b"x" * 1000), expected_size=1000)
    assert view.engine.budget.peak == 1000
    assert view.engine.budget.in_use == 0


async def test_an_empty_body_is_an_empty_object() -> None:
    store = MemoryStore()
    await view_of(store).write_stream("empty", stream(b""))
    assert store.objects["empty"].data == b""


async def test_a_body_of_exactly_one_part_is_one_put() -> None:
    store = MemoryStore()
    await view_of(store).write_stream("a", stream(pattern(5 * MiB)))
    assert store.calls["put"] == 1 and store.calls["create_upload"] == 0


async def test_40_mib_stream_as_parts_with_memory_bounded_by_parts_in_flight() -> None:
    store = SlowParts()
    view = view_of(store, part=5)
    data = pattern(40 * MiB + 123)
    info = await view.write_stream("big", stream(data))
    assert store.objects["big"].data == data
    assert info.size == len(data)
    # Parts of exactly 5 MiB (the chunk across a boundary is split), the last the rest.
    assert store.lengths == [5 * MiB] * 8 + [123]
    assert 2 <= store.most_in_flight <= upload.MAX_IN_FLIGHT
    budget = view.engine.budget
    assert budget.peak <= (upload.MAX_IN_FLIGHT + 1) * (5 * MiB + CHUNK)
    assert budget.in_use == 0
    assert store.uploads == {}


async def test_concurrent_uploads_share_one_budget_and_never_exceed_it() -> None:
    store = SlowParts()
    view = view_of(store, memory_target=12, part=5)  # room for two 5 MiB parts
    bodies = {f"k{i}": pattern(21 * MiB + i) for i in range(3)}
    await asyncio.gather(*(view.write_stream(k, stream(v)) for k, v in bodies.items()))
    for key, data in bodies.items():
        assert store.objects[key].data == data
    assert view.engine.budget.peak <= 12 * MiB
    assert view.engine.budget.in_use == 0


async def test_a_failing_part_aborts_the_upload_and_nothing_becomes_visible() -> None:
    store = SlowParts()
    view = view_of(store)
    store.fail("upload_part", Upstream("part 3 failed"), times=1)
    store.calls["upload_part"] = 0
    with pytest.raises(Upstream):
        await view.write_stream("big", stream(pattern(30 * MiB)))
    assert "big" not in store.objects
    assert store.calls["abort_upload"] == 1
    assert store.calls["complete_upload"] == 0
    assert await store.list_uploads("") == []
    assert view.engine.budget.in_use == 0


async def test_a_failing_completion_aborts_the_upload() -> None:
    store = MemoryStore()
    view = view_of(store)
    store.fail("complete_upload", Upstream("complete failed"))
    with pytest.raises(Upstream):
        await view.write_stream("big", stream(pattern(11 * MiB)))
    assert "big" not in store.objects
    assert await store.list_uploads("") == []
    assert view.engine.budget.in_use == 0


async def test_a_stream_that_breaks_aborts_the_upload() -> None:
    async def broken() -> AsyncIterator[bytes]:
        async for piece in stream(pattern(12 * MiB)):
            yield piece
        raise ConnectionResetError("client went away")

    store = MemoryStore()
    view = view_of(store)
    with pytest.raises(ConnectionResetError):
        await view.write_stream("big", broken())
    assert "big" not in store.objects
    assert store.calls["abort_upload"] == 1
    assert await store.list_uploads("") == []
    assert view.engine.budget.in_use == 0


async def test_cancellation_mid_stream_aborts_and_releases_the_budget() -> None:
    store = SlowParts()
    view = view_of(store)
    gate = asyncio.Event()
    task = asyncio.create_task(view.write_stream("big", stalled(pattern(16 * MiB), gate)))
    await until(lambda: store.calls["upload_part"] >= 3, "three parts uploading")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "big" not in store.objects
    assert store.calls["abort_upload"] == 1
    assert await store.list_uploads("") == []
    assert view.engine.budget.in_use == 0


async def test_cancellation_of_a_single_part_body_leaves_nothing() -> None:
    store = MemoryStore()
    view = view_of(store)
    gate = asyncio.Event()
    task = asyncio.create_task(view.write_stream("small", stalled(b"abc", gate)))
    await until(lambda: view.engine.budget.in_use > 0, "the part is being filled")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "small" not in store.objects
    assert view.engine.budget.in_use == 0


async def test_the_previous_version_stays_readable_until_the_new_one_is_complete() -> None:
    store = MemoryStore()
    store.put_sync("doc", b"old version")
    view = view_of(store)
    gate = asyncio.Event()
    new = pattern(12 * MiB)
    task = asyncio.create_task(view.write_stream("doc", stalled(new, gate)))
    await until(lambda: store.calls["upload_part"] >= 2, "two parts uploaded")
    assert store.objects["doc"].data == b"old version"
    gate.set()
    await task
    assert store.objects["doc"].data == new


XEEL = "X-Expected-Entity-Length"


@pytest.mark.parametrize(
    ("headers", "content_length", "announced"),
    [
        ({}, None, None),  # chunked, nothing announced
        ({}, 12, 12),
        ({XEEL: "12"}, None, 12),  # Finder: chunked with the length beside it
        ({XEEL: " 12 "}, 12, 12),
    ],
)
def test_the_announced_length(
    headers: dict[str, str], content_length: int | None, announced: int | None
) -> None:
    assert announced_length(headers, content_length) == announced


@pytest.mark.parametrize(
    ("headers", "content_length", "why"),
    [
        ({XEEL: "12"}, 13, "differ"),
        ({XEEL: "-1"}, None, "byte count"),
        ({XEEL: "1e3"}, None, "byte count"),
        ({XEEL: "\u00b2"}, None, "byte count"),  # a digit to str.isdigit, not to int()
    ],
)
def test_a_malformed_or_contradicted_announcement_is_a_bad_request(
    headers: dict[str, str], content_length: int | None, why: str
) -> None:
    with pytest.raises(BadRequest, match=why):
        announced_length(headers, content_length)


def test_the_length_check_refuses_too_long_at_once_and_too_short_at_the_end() -> None:
    check_length(5, None, ended=True)
    check_length(5, 10, ended=False)  # more may come
    check_length(10, 10, ended=True)
    with pytest.raises(LengthMismatch, match="longer than the 10 bytes"):
        check_length(11, 10, ended=False)
    with pytest.raises(LengthMismatch, match="ended after 5 of the 10 bytes"):
        check_length(5, 10, ended=True)


@pytest.mark.parametrize("size", [1000, 12 * MiB])
async def test_a_body_shorter_than_announced_is_not_committed(size: int) -> None:
    store = MemoryStore()
    view = view_of(store)
    with pytest.raises(LengthMismatch, match="announced"):
        await view.write_stream("f", stream(pattern(size)), expected_size=size + 1)
    assert "f" not in store.objects
    assert await store.list_uploads("") == []
    assert view.engine.budget.in_use == 0


@pytest.mark.parametrize("size", [1000, 12 * MiB])
async def test_a_body_longer_than_announced_is_not_committed(size: int) -> None:
    store = MemoryStore()
    view = view_of(store)
    with pytest.raises(LengthMismatch, match="longer"):
        await view.write_stream("f", stream(pattern(size)), expected_size=size - 1)
    assert "f" not in store.objects
    assert await store.list_uploads("") == []


async def test_a_body_of_the_announced_length_is_committed() -> None:
    store = MemoryStore()
    data = pattern(12 * MiB)
    await view_of(store).write_stream("f", stream(data), expected_size=len(data))
    assert store.objects["f"].data == data


@pytest.mark.parametrize("size", [10, 12 * MiB])
async def test_create_only_refuses_a_key_that_exists(size: int) -> None:
    store = MemoryStore()
    store.put_sync("f", b"theirs")
    with pytest.raises(Exists):
        await view_of(store).write_stream("f", stream(pattern(size)), create_only=True)
    assert store.objects["f"].data == b"theirs"
    assert await store.list_uploads("") == []


async def test_a_body_past_the_part_limit_is_refused_and_aborted() -> None:
    store = MemoryStore()
    view = view_of(store)
    limits = StoreLimits(min_part=64 * KiB, max_parts=3)
    with pytest.raises(TooLarge, match="--write-part-size"):
        await upload.write_stream(store, view.engine.budget, "f", stream(pattern(MiB)),
                                  part_size=64 * KiB, limits=limits)
    assert "f" not in store.objects
    assert await store.list_uploads("") == []
    assert view.engine.budget.in_use == 0


class PartSizes(MemoryStore):
    sizes: list[int]

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes
                          ) -> UploadPart:
        self.sizes.append(len(data))
        return await super().upload_part(key, upload_id, number, data)


@pytest.mark.parametrize("chunk", [77_777, CHUNK, 3 * CHUNK + 1])
@pytest.mark.parametrize("announced", [False, True])
async def test_parts_are_the_part_size_up_to_one_chunk_over_and_obey_the_store(
    chunk: int, announced: bool
) -> None:
    """Odd chunk sizes (even chunks larger than CHUNK) make legal parts, each filled in a
    buffer of the part size and one chunk."""
    store = PartSizes()
    store.sizes = []
    data = pattern(23 * MiB + 5)
    view = view_of(store)
    await view.write_stream("f", stream(data, chunk),
                            expected_size=len(data) if announced else None)
    assert store.objects["f"].data == data
    *full, last = store.sizes
    assert all(S3_LIMITS.min_part <= size <= 5 * MiB + CHUNK for size in full)
    assert 0 < last <= 5 * MiB + CHUNK
    assert view.engine.budget.peak <= (upload.MAX_IN_FLIGHT + 1) * (5 * MiB + CHUNK)


# ---- on a real S3 API (moto) ------------------------------------------------------------


@pytest.fixture
async def moto_store(moto_bucket: tuple[str, str]) -> AsyncIterator[S3Store]:
    endpoint, bucket = moto_bucket
    store = await S3Store.create(bucket, moto_settings(endpoint))
    try:
        yield store
    finally:
        await store.close()


async def test_multipart_upload_on_s3(moto_store: S3Store) -> None:
    view = view_of(moto_store)
    data = pattern(12 * MiB + 7)
    info = await view.write_stream("dir/big.bin", stream(data), content_type="application/x")
    got = await moto_store.get("dir/big.bin")
    body = b"".join([chunk async for chunk in got.body])
    assert body == data and info.size == len(data)
    assert (await moto_store.head("dir/big.bin")).content_type == "application/x"
    assert await moto_store.list_uploads("") == []


async def test_a_broken_stream_leaves_no_upload_on_s3(moto_store: S3Store) -> None:
    async def broken() -> AsyncIterator[bytes]:
        async for piece in stream(pattern(11 * MiB)):
            yield piece
        raise ConnectionResetError("client went away")

    view = view_of(moto_store)
    with pytest.raises(ConnectionResetError):
        await view.write_stream("dir/big.bin", broken())
    assert await moto_store.list_uploads("") == []
    page = await moto_store.list_page("", None)
    assert page.objects == ()

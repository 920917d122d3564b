"""The upload of a body announced longer than one part is created while its first part
arrives, and the guarantees hold around that overlap: nothing is left behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.engine import StoreView, upload
from gateway.engine.upload import CHUNK, LengthMismatch, known_multipart
from gateway.errors import Upstream
from tests.engine.support import stream, until
from tests.engine.test_upload import SlowParts, pattern, view_of
from tests.memorystore import MemoryStore

MiB = 1024 * 1024


async def nothing_left(store: MemoryStore, view: StoreView) -> None:
    """No object, no multipart upload, no reservation: what a refused upload leaves."""
    assert (store.objects, await store.list_uploads("")) == ({}, [])
    assert view.engine.budget.in_use == 0


def test_only_a_length_past_the_first_parts_buffer_is_known_to_be_multipart() -> None:
    assert known_multipart(10 * MiB, 5 * MiB + CHUNK)
    assert not known_multipart(5 * MiB + CHUNK, 5 * MiB + CHUNK)
    assert not known_multipart(None, 5 * MiB + CHUNK)


async def held_after(data: bytes, gate: asyncio.Event) -> AsyncIterator[bytes]:
    """``data``, then the rest only once ``gate`` is set."""
    async for piece in stream(data):
        yield piece
    await gate.wait()
    async for piece in stream(pattern(11 * MiB)[len(data):]):
        yield piece


async def test_the_upload_is_created_while_its_first_part_still_arrives() -> None:
    store = MemoryStore()
    view = view_of(store)
    gate = asyncio.Event()
    body = held_after(pattern(11 * MiB)[: 1 * MiB], gate)
    task = asyncio.create_task(view.write_stream("big", body, expected_size=11 * MiB))
    # Only 1 MiB of the first 5 MiB part has come: the upload exists already.
    await until(lambda: store.calls["create_upload"] == 1, "the upload is created")
    assert store.calls["upload_part"] == 0
    gate.set()
    info = await task
    assert store.objects["big"].data == pattern(11 * MiB)
    assert info.size == 11 * MiB
    assert store.calls["create_upload"] == 1 and store.calls["put"] == 0
    assert view.engine.budget.in_use == 0


async def test_a_body_that_never_starts_creates_no_upload() -> None:
    store = MemoryStore()
    view = view_of(store)
    with pytest.raises(LengthMismatch):
        await view.write_stream("big", stream(b""), expected_size=11 * MiB)
    assert store.calls["create_upload"] == 0
    assert view.engine.budget.in_use == 0


async def broken_after(size: int) -> AsyncIterator[bytes]:
    async for piece in stream(pattern(size)):
        yield piece
    raise ConnectionResetError("client went away")


@pytest.mark.parametrize("sent", [0, 2 * MiB])
async def test_a_body_that_breaks_in_its_first_part_leaves_no_upload(sent: int) -> None:
    store = MemoryStore()
    view = view_of(store)
    with pytest.raises(ConnectionResetError):
        await view.write_stream("big", broken_after(sent), expected_size=11 * MiB)
    # Created once the first bytes came, so aborted; never created for no bytes at all.
    created = 1 if sent else 0
    assert (store.calls["create_upload"], store.calls["abort_upload"]) == (created, created)
    await nothing_left(store, view)


async def test_a_body_short_of_its_announced_length_is_not_committed() -> None:
    store = MemoryStore()
    view = view_of(store)
    with pytest.raises(LengthMismatch):
        await view.write_stream("big", stream(pattern(3 * MiB)), expected_size=11 * MiB)
    await nothing_left(store, view)


async def test_a_failed_create_stops_the_upload_and_releases_the_first_part() -> None:
    store = MemoryStore()
    view = view_of(store)
    store.fail("create_upload", Upstream("create refused"))
    with pytest.raises(Upstream, match="create refused"):
        await view.write_stream("big", stream(pattern(11 * MiB)), expected_size=11 * MiB)
    assert store.calls["upload_part"] == store.calls["abort_upload"] == 0
    await nothing_left(store, view)


async def test_cancelled_while_the_first_part_arrives_aborts_the_upload() -> None:
    store = MemoryStore()
    view = view_of(store)
    gate = asyncio.Event()  # never set: the client stalls
    body = held_after(pattern(1 * MiB), gate)
    task = asyncio.create_task(view.write_stream("big", body, expected_size=11 * MiB))
    await until(lambda: store.calls["create_upload"] == 1, "the upload is created")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.calls["abort_upload"] == 1
    await nothing_left(store, view)


async def test_up_to_max_in_flight_parts_upload_at_once() -> None:
    store = SlowParts()
    view = view_of(store)
    parts = upload.MAX_IN_FLIGHT + 4
    data = pattern(parts * 5 * MiB)
    await view.write_stream("big", stream(data, 100_000), expected_size=len(data))
    assert store.objects["big"].data == data
    assert store.most_in_flight == upload.MAX_IN_FLIGHT
    # A part uploading holds its bytes; only the one being filled holds a chunk more.
    assert view.engine.budget.peak <= (upload.MAX_IN_FLIGHT + 1) * 5 * MiB + CHUNK
    assert view.engine.budget.in_use == 0


@pytest.mark.parametrize("announced", [True, False])
async def test_parts_are_of_exactly_the_part_size_whatever_the_chunks(announced: bool) -> None:
    store = SlowParts()
    view = view_of(store)
    data = pattern(16 * MiB + 7)
    size = len(data) if announced else None
    await view.write_stream("big", stream(data, 100_000), expected_size=size)  # no divisor
    assert store.objects["big"].data == data
    assert store.lengths == [5 * MiB] * 3 + [1 * MiB + 7]
    assert view.engine.budget.in_use == 0

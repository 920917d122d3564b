"""The engine over real S3 servers: s3rver for a large object, moto for S3 semantics."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest

from gateway.engine import StoreView
from gateway.errors import ObjectChanged
from gateway.storage.base import GetResult
from gateway.storage.s3 import S3Store
from tests.engine.support import MiB, data_of, make_view, read_key
from tests.servers import S3RVER_PROFILE, client, moto_settings, s3rver_settings


@pytest.fixture
async def s3rver_view(s3rver_bucket: tuple[str, str]) -> AsyncIterator[tuple[StoreView, str]]:
    endpoint, bucket = s3rver_bucket
    store = await S3Store.create(bucket, s3rver_settings(endpoint))
    view = make_view(store, memory_mib=256)
    try:
        yield view, bucket
    finally:
        await view.engine.close()
        await store.close()


@pytest.fixture
async def moto_view(moto_bucket: tuple[str, str]) -> AsyncIterator[tuple[StoreView, str]]:
    endpoint, bucket = moto_bucket
    store = await S3Store.create(bucket, moto_settings(endpoint))
    view = make_view(store)
    try:
        yield view, bucket
    finally:
        await view.engine.close()
        await store.close()


async def test_a_64_mib_object_reads_byte_exact_with_parallel_ranged_gets(
    s3rver_view: tuple[StoreView, str], s3rver_bucket: tuple[str, str]
) -> None:
    view, bucket = s3rver_view
    data = data_of(64 * MiB)
    client(s3rver_bucket[0], S3RVER_PROFILE).put_object(Bucket=bucket, Key="big.bin", Body=data)
    digest = hashlib.sha256()
    size = 0
    async with await view.open("big.bin") as read:
        assert read.info.size == len(data)
        async with aclosing(read.iter_range(0, read.info.size)) as chunks:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
    assert size == len(data)
    assert digest.digest() == hashlib.sha256(data).digest()
    counters = view.engine.counters
    assert counters.store_gets > 8
    assert counters.inflight_peak > 1  # several ranged GETs at once for one reader
    assert counters.bytes_fetched == len(data)
    assert view.engine.budget.peak <= view.engine.budget.limit


async def test_a_range_in_the_middle_of_a_large_object_on_s3rver(
    s3rver_view: tuple[StoreView, str], s3rver_bucket: tuple[str, str]
) -> None:
    view, bucket = s3rver_view
    data = data_of(9 * MiB + 7)
    info_etag = client(s3rver_bucket[0], S3RVER_PROFILE).put_object(
        Bucket=bucket, Key="mid.bin", Body=data
    )["ETag"]
    info = await view.stat("mid.bin")
    assert info.etag == info_etag
    async with await view.open("mid.bin", info) as read, aclosing(
        read.iter_range(3 * MiB + 1, 8 * MiB + 3)
    ) as chunks:
        assert b"".join([c async for c in chunks]) == data[3 * MiB + 1 : 8 * MiB + 3]


async def test_a_small_object_on_moto_costs_one_request(
    moto_view: tuple[StoreView, str], moto_bucket: tuple[str, str]
) -> None:
    view, bucket = moto_view
    client(moto_bucket[0]).put_object(
        Bucket=bucket, Key="note.txt", Body=b"a small note", ContentType="text/plain"
    )
    async with await view.open("note.txt") as read:
        assert read.info.size == 12
        assert read.info.content_type == "text/plain"
        async with aclosing(read.iter_range(0, 12)) as chunks:
            assert b"".join([c async for c in chunks]) == b"a small note"
    counters = view.engine.counters
    assert (counters.store_gets, counters.store_heads) == (1, 0)


async def test_a_zero_byte_object_on_moto_reads_as_empty(
    moto_view: tuple[StoreView, str], moto_bucket: tuple[str, str]
) -> None:
    view, bucket = moto_view
    client(moto_bucket[0]).put_object(Bucket=bucket, Key="empty", Body=b"")
    assert await read_key(view, "empty") == b""
    assert (await view.stat("empty")).size == 0


class HeldBack:
    """A store whose GETs past the first block wait until ``released`` is set: the test, not
    the timing of read-ahead, decides that nothing past the first block is fetched before
    the object is replaced."""

    def __init__(self, store: S3Store) -> None:
        self.store = store
        self.released = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def get(self, key: str, start: int | None = None, end: int | None = None,
                  if_match: str | None = None) -> GetResult:
        if start:
            await self.released.wait()
        return await self.store.get(key, start, end, if_match)


async def test_an_object_replaced_mid_read_on_moto_fails_the_read(
    moto_bucket: tuple[str, str]
) -> None:
    endpoint, bucket = moto_bucket
    s3 = client(endpoint)
    old = data_of(8 * MiB, seed=1)
    s3.put_object(Bucket=bucket, Key="k", Body=old)
    store = HeldBack(await S3Store.create(bucket, moto_settings(endpoint)))
    view = make_view(store)  # type: ignore[arg-type]
    received = b""
    try:
        async with await view.open("k") as read:
            with pytest.raises(ObjectChanged):
                async with aclosing(read.iter_range(0, read.info.size)) as chunks:
                    async for chunk in chunks:
                        if not received:
                            s3.put_object(Bucket=bucket, Key="k", Body=data_of(8 * MiB, seed=2))
                            store.released.set()
                        received += chunk
    finally:
        await view.engine.close()
        await store.store.close()
    assert 0 < len(received) < len(old)
    assert received == old[: len(received)]

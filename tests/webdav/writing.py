"""For the write-method tests (PUT, MKCOL, DELETE, COPY, MOVE): the same specification
run over several stores, and a few helpers to arrange and inspect a store. Apps come from
``tests.apps``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.storage.base import ObjectStore
from gateway.storage.local import LocalStore
from gateway.storage.s3 import S3Store
from tests.memorystore import MemoryStore
from tests.servers import moto_settings

# ---- stores to run the same specification on --------------------------------------------


def store_fixture(*kinds: str) -> Any:
    """A ``store`` fixture parametrized over ``kinds`` (memory, local, moto)."""

    @pytest.fixture(params=kinds, name="store")
    async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
        if request.param == "memory":
            yield MemoryStore()
        elif request.param == "local":
            yield LocalStore(tmp_path / "root", create=True)
        else:
            endpoint, bucket = request.getfixturevalue("moto_bucket")
            s3 = await S3Store.create(bucket, moto_settings(endpoint))
            try:
                yield s3
            finally:
                await s3.close()

    return store


async def keys(store: ObjectStore, prefix: str = "") -> set[str]:
    """Every key under ``prefix`` (directory markers included)."""
    found: set[str] = set()
    token: str | None = None
    while True:
        page = await store.list_page(prefix, None, token)
        found.update(info.key for info in page.objects)
        if not page.next_token:
            return found
        token = page.next_token


async def read(store: ObjectStore, key: str) -> bytes:
    result = await store.get(key)
    try:
        return b"".join([chunk async for chunk in result.body])
    finally:
        await result.aclose()


async def wait_for(condition: Callable[[], Awaitable[bool]], what: str, limit: float = 20.0
                   ) -> None:
    """Poll until ``condition`` holds (a deadline, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        await asyncio.sleep(0.02)


LOCK_FINDER = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype>"
    "<D:owner><D:href>http://www.apple.com/webdav_fs/</D:href></D:owner></D:lockinfo>"
)

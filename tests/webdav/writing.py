"""Build a real app over any store for the write-method tests (PUT, MKCOL, DELETE, COPY,
MOVE), and a few helpers to arrange and inspect the store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.app import GATEWAY, Gateway, build_gateway, make_app
from gateway.fs.share import Share
from gateway.settings import (
    EngineSettings,
    Policy,
    ServerSettings,
    Settings,
    ShareSettings,
    Source,
)
from gateway.storage.base import ObjectStore
from gateway.storage.local import LocalStore
from gateway.storage.s3 import S3Store
from gateway.webdav.lockservice import LOCKS, LockService
from tests.memorystore import MemoryStore
from tests.servers import moto_settings

ALL_FLAGS = Policy(allow_overwrite=True, allow_delete=True, allow_rename=True)


def build_app(
    store: ObjectStore,
    *,
    policy: Policy | None = None,
    prefix: str = "",
    mount: str = "/",
    write_part_size: int = 8,
    memory_target: int = 512,
) -> web.Application:
    """One share over ``store``, wired exactly as the command wires it."""
    engine = EngineSettings(write_part_size=write_part_size, memory_target=memory_target)
    share = ShareSettings(mount, Source("s3", "bucket", prefix), policy=policy or Policy())
    return make_app(build_gateway(Settings(ServerSettings(), engine, (share,)), [store]))


def gateway_of(app: web.Application) -> Gateway:
    return app[GATEWAY]


def share_of(app: web.Application) -> Share:
    return app[GATEWAY].shares[0]


def locks_of(app: web.Application) -> LockService:
    return app[LOCKS]


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


# ---- a real TCP server, for what the test client cannot do -------------------------------


@contextlib.asynccontextmanager
async def serve(app: web.Application, handler_cancellation: bool = True) -> AsyncIterator[int]:
    """Run ``app`` on 127.0.0.1 (a free port, as the command runs it); yields the port."""
    runner = web.AppRunner(app, handler_cancellation=handler_cancellation)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body (status, headers, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return status, headers, body


LOCK_FINDER = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype>"
    "<D:owner><D:href>http://www.apple.com/webdav_fs/</D:href></D:owner></D:lockinfo>"
)

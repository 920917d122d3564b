"""The one way tests build a gateway app: ``gateway.app.build_gateway`` (the command's own
wiring) over stores the test holds, with settings named by a few keywords.

- ``app_for(store, policy=..., prefix=..., mount=...)``: one share over ``store``;
- ``gateway_for(...)``: the same ``Gateway`` before ``make_app``, to read or change it;
- ``memory_app(mounts, ...)``: one MemoryStore per mount, every write allowed (ops tests);
- ``serving(app)``: the app on 127.0.0.1, a free port, run as ``bucketdav serve`` runs it;
  ``raw_request`` and ``read_reply`` for byte-exact HTTP the test client cannot send.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiohttp import web

from gateway.app import GATEWAY, Gateway, build_gateway, make_app
from gateway.fs.share import Share
from gateway.ops.limits import LIMITS
from gateway.server import GuardedSite, runner_options
from gateway.settings import (
    AuthSettings,
    EngineSettings,
    LimitSettings,
    OpsSettings,
    Policy,
    ServerSettings,
    Settings,
    ShareSettings,
    Source,
)
from gateway.storage.base import ObjectStore
from gateway.webdav.lockservice import LOCKS, LockService
from tests.memorystore import MemoryStore

ALL_FLAGS = Policy(allow_overwrite=True, allow_delete=True, allow_rename=True)


def settings_for(
    mounts: Sequence[str] = ("/",),
    *,
    prefix: str = "",
    source: Source | None = None,
    policy: Policy | None = None,
    server: ServerSettings | None = None,
    engine: EngineSettings | None = None,
    limits: LimitSettings | None = None,
    ops: OpsSettings | None = None,
    auth: AuthSettings | None = None,
) -> Settings:
    """Settings with one share per mount over ``source`` (default: bucket ``bucket`` at
    ``prefix``); every group not named keeps the command's defaults."""
    where = source or Source("s3", "bucket", prefix)
    shares = tuple(ShareSettings(m, where, policy=policy or Policy()) for m in mounts)
    return Settings(
        server=server or ServerSettings(),
        engine=engine or EngineSettings(),
        shares=shares,
        limits=limits or LimitSettings(),
        ops=ops or OpsSettings(),
        auth=auth or AuthSettings(),
    )


def gateway_for(
    stores: ObjectStore | Sequence[ObjectStore], *, mount: str = "/", **settings: Any
) -> Gateway:
    """A ``Gateway`` over ``stores`` (one per mount, in order; one store serves ``mount``).
    ``settings`` are the keywords of ``settings_for``."""
    listed = list(stores) if isinstance(stores, Sequence) else [stores]
    settings.setdefault("mounts", (mount,))
    return build_gateway(settings_for(**settings), listed)


def app_for(
    stores: ObjectStore | Sequence[ObjectStore], *, mount: str = "/", **settings: Any
) -> web.Application:
    """The app ``bucketdav serve`` would run over ``stores`` (see ``gateway_for``)."""
    return make_app(gateway_for(stores, mount=mount, **settings))


@dataclass
class MemoryApp:
    app: web.Application
    stores: dict[str, MemoryStore]  # by mount


def memory_app(
    mounts: Sequence[str] = ("/",), *, policy: Policy = ALL_FLAGS, **settings: Any
) -> MemoryApp:
    """An app with one MemoryStore per mount; metadata is cached for a millisecond only,
    so what a test puts in a store shows at once."""
    settings.setdefault("engine", EngineSettings(metadata_ttl=0.001))
    stores = {m: MemoryStore(name=m) for m in mounts}
    app = app_for(list(stores.values()), mounts=tuple(mounts), policy=policy, **settings)
    return MemoryApp(app, stores)


def gateway_of(app: web.Application) -> Gateway:
    return app[GATEWAY]


def share_of(app: web.Application) -> Share:
    return app[GATEWAY].shares[0]


def locks_of(app: web.Application) -> LockService:
    return app[LOCKS]


# ---- a real TCP listener, for what the test client cannot do -----------------------------


@asynccontextmanager
async def serving(app: web.Application, **runner: Any) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) with the runner options and guarded
    listener of ``gateway.server``, ``runner`` overriding options; yields the base URL
    without a trailing slash."""
    options = {**runner_options(app), **runner}
    app_runner = web.AppRunner(app, **options)
    await app_runner.setup()
    site = GuardedSite(app_runner, "127.0.0.1", 0, app[LIMITS])
    await site.start()
    port = app_runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await app_runner.cleanup()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


class RawReply(NamedTuple):
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


def parse_reply(data: bytes) -> RawReply:
    """A whole reply as read until the server closed the connection."""
    head, _, body = data.partition(b"\r\n\r\n")
    return RawReply(*parse_head(head), body)


async def read_reply(reader: asyncio.StreamReader) -> RawReply:
    """One reply with a Content-Length body, leaving the connection open."""
    status, headers = parse_head((await reader.readuntil(b"\r\n\r\n"))[:-4])
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return RawReply(status, headers, body)


async def raw_request(
    base: str, method: str, target: str, headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> RawReply:
    """Send exactly ``method target`` (no client-side normalisation) and read the reply."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("PUT", "POST"):
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    return parse_reply(data)

"""``Expect: 100-continue`` on a PUT (SEMANTICS, PUT): the ``100 Continue`` is sent only once
every check has passed, so a PUT refused for a missing parent, a lock or the upload capacity
gets its refusal as the first reply and its body is never asked for. (Credentials, size and
policy are held by tests/test_limits.py, tests/auth and tests/webdav/test_put.py.)

Each refusal is set beside the same request head with the refusing condition lifted, which
gets its 100: the difference is the condition, not the request.
"""

from __future__ import annotations

import asyncio

from aiohttp import ClientSession

from gateway.ops.limits import LIMITS
from gateway.settings import EngineSettings, LimitSettings
from tests.apps import RawReply, memory_app, parse_head, port_of, serving
from tests.webdav.davxml import lock_body


def put_head(path: str, *extra: str) -> bytes:
    lines = [f"PUT {path} HTTP/1.1", "Host: x", "Content-Length: 5", *extra,
             "Expect: 100-continue"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def first_reply(url: str, head: bytes) -> RawReply:
    """Send a request head only (never the body) and return the first reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
    try:
        writer.write(head)
        await writer.drain()
        status, headers = parse_head((await asyncio.wait_for(
            reader.readuntil(b"\r\n\r\n"), 20))[:-4])
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if status != 100 and length else b""
        return RawReply(status, headers, body)
    finally:
        writer.close()


async def test_a_missing_parent_is_refused_before_100_continue() -> None:
    built = memory_app(engine=EngineSettings(metadata_ttl=0))  # the parent shows at once
    store = built.stores["/"]
    async with serving(built.app) as url:
        refused = await first_reply(url, put_head("/no/such/f.txt"))
        store.put_sync("no/such/", b"")
        allowed = await first_reply(url, put_head("/no/such/f.txt"))
    assert refused.status == 409 and b"/no/such/" in refused.body
    assert allowed.status == 100
    assert "no/such/f.txt" not in store.objects


async def test_a_lock_is_refused_before_100_continue() -> None:
    built = memory_app()
    store = built.stores["/"]
    store.put_sync("locked.txt", b"v1")
    async with serving(built.app) as url, ClientSession() as session:
        async with session.request("LOCK", url + "/locked.txt", data=lock_body(),
                                   headers={"Timeout": "Second-600"}) as lock:
            assert lock.status == 200
            token = lock.headers["Lock-Token"]
        refused = await first_reply(url, put_head("/locked.txt"))
        allowed = await first_reply(url, put_head("/locked.txt", f"If: ({token})"))
    assert refused.status == 423
    assert allowed.status == 100
    assert store.objects["locked.txt"].data == b"v1"


async def test_uploads_at_capacity_are_refused_before_100_continue() -> None:
    built = memory_app(limits=LimitSettings(max_uploads=1))
    limits = built.app[LIMITS]
    async with serving(built.app) as url:
        # One upload in progress: its head and part of its body, the rest held back.
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
        writer.write(b"PUT /first.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        await writer.drain()
        for _ in range(500):
            if limits.uploads:
                break
            await asyncio.sleep(0.01)
        assert limits.uploads == 1
        refused = await first_reply(url, put_head("/second.bin"))
        writer.write(b"world")  # the first upload ends: capacity is free again
        await writer.drain()
        first = parse_head((await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20))[:-4])
        writer.close()
        allowed = await first_reply(url, put_head("/second.bin"))
    assert refused.status == 503 and refused.headers["retry-after"] == "5"
    assert refused.headers["connection"].lower() == "close"  # its body is not wanted
    assert first[0] == 201
    assert allowed.status == 100
    assert "second.bin" not in built.stores["/"].objects

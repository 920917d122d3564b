"""Response helpers shared by the front-ends.

One content-type guess: a GET, the JSON listing, PROPFIND's getcontenttype and the type a
PUT stores all say the same for a name, and a stored type wins over any guess. One way to
stream a body: a status while the source has not started, a cut connection after."""

from __future__ import annotations

import asyncio.selector_events
import sys
from collections.abc import AsyncGenerator, Callable
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.errors import GatewayError, Unavailable, status_for
from gateway.responses import content_type_of, guess_type, plain, send_streamed
from tests.apps import memory_app
from tests.memorystore import MemoryStore
from tests.webdav.davxml import D, multistatus

# Names where guessing from the whole name and from the last suffix used to disagree.
NAMES = {
    "a.tar.gz": "application/octet-stream",  # gzip bytes; no Content-Encoding is sent
    "notes.TXT": "text/plain",
    "..txt": "text/plain",
    "data:abc,def": "application/octet-stream",  # not a data: URL, a name
    "README": "application/octet-stream",
    "photo.jpeg": "image/jpeg",
}


@pytest.mark.parametrize(("name", "expected"), NAMES.items())
def test_the_guess_reads_the_last_suffix_only(name: str, expected: str) -> None:
    assert content_type_of(None, name) == expected
    assert content_type_of("binary/octet-stream", name) == expected  # S3's "none sent"
    assert content_type_of("text/x-sent", name) == "text/x-sent"
    assert guess_type(name) == (None if expected == "application/octet-stream" else expected)


@pytest.fixture
async def served(aiohttp_client: AiohttpClient) -> tuple[TestClient, MemoryStore]:
    app = memory_app()
    store = app.stores["/"]
    for name in NAMES:
        store.put_sync(f"dir/{name}", b"x")
    return await aiohttp_client(app.app), store


async def test_get_listing_and_propfind_say_the_same(
    served: tuple[TestClient, MemoryStore],
) -> None:
    client, _ = served
    listing = await (await client.get("/dir/?format=json")).json()
    listed = {e["name"]: e["content_type"] for e in listing["entries"]}
    resp = await client.request("PROPFIND", "/dir/", headers={"Depth": "1"})
    answers = {unquote(href): a for href, a in multistatus(await resp.read()).items()}
    for name, expected in NAMES.items():
        got = (await client.get(f"/dir/{name}")).headers["Content-Type"]
        assert got == expected, name
        assert listed[name] == expected, name
        props = answers[f"/dir/{name}"].ok()
        assert props[D + "getcontenttype"].text == expected, name


async def test_a_put_stores_the_same_guess(served: tuple[TestClient, MemoryStore]) -> None:
    client, store = served
    for name, expected in NAMES.items():
        assert (await client.put(f"/dir/new-{name}", data=b"y",
                                 headers={"Content-Type": ""})).status == 201
        assert store.objects[f"dir/new-{name}"].info.content_type == guess_type(name)
        assert (await client.get(f"/dir/new-{name}")).headers["Content-Type"] == expected


# ---- send_streamed: a status while the source has not started, a cut connection after --


def _app(source: Callable[[], AsyncGenerator[bytes, None]]) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await send_streamed(request, web.StreamResponse(), source())
        except GatewayError as exc:
            return plain(status_for(exc), exc.message)

    app = web.Application()
    app.router.add_get("/", handler)
    return app


@pytest.mark.parametrize("error", [Unavailable("the store went away"), RuntimeError("bug")])
@pytest.mark.parametrize("fail_at", [None, 0, 2])
async def test_a_source_failing_before_its_first_chunk_gets_a_status_after_it_a_cut(
    aiohttp_client: AiohttpClient, error: Exception, fail_at: int | None
) -> None:
    closed: list[bool] = []

    async def source() -> AsyncGenerator[bytes, None]:
        try:
            for i in range(3):
                if i == fail_at:
                    raise error
                yield b"chunk"
        finally:
            closed.append(True)

    client = await aiohttp_client(_app(source))
    resp = await client.get("/")
    if fail_at is None:
        assert resp.status == 200
        assert await resp.read() == b"chunk" * 3
    elif fail_at == 0 and isinstance(error, Unavailable):
        assert resp.status == 503  # nothing was sent yet: the failure has its status
    elif fail_at == 0:
        assert resp.status == 500
    else:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):  # never a clean, short body
            await resp.read()
    assert closed == [True]


@pytest.mark.parametrize(("chunks", "writes"), [([b"whole"], 1), ([b"two ", b"chunks"], 3)])
async def test_a_body_in_hand_leaves_with_its_head_in_one_write(
    aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes],
    writes: int,
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        async def source() -> AsyncGenerator[bytes, None]:
            for chunk in chunks:
                yield chunk

        resp = web.StreamResponse()
        resp.content_length = sum(map(len, chunks))
        return await send_streamed(request, resp, source())

    app = web.Application()
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    port = client.server.port
    sent: list[bytes] = []
    transport_class = asyncio.selector_events._SelectorSocketTransport
    write = transport_class.write

    def counted(self: asyncio.Transport, data: bytes) -> None:
        if self.get_extra_info("sockname")[1] == port:  # the server's side only
            sent.append(bytes(data))
        write(self, data)

    monkeypatch.setattr(transport_class, "write", counted)
    resp = await client.get("/")
    assert await resp.read() == b"".join(chunks)
    assert len(sent) == writes  # a streamed body: its head, then each chunk
    assert sent[0].startswith(b"HTTP/1.1 200 OK\r\n")


async def test_no_chunk_is_held_while_the_next_is_awaited(aiohttp_client: AiohttpClient) -> None:
    """A chunk may be a cached block whose memory reservation ends once it is sent; the
    next may have to wait for memory. Held meanwhile, each reader's last chunk would be
    memory nothing counts (32 readers of the disk cache: 32 MiB past --memory-target)."""
    sent: list[bytes] = []
    held: list[bool] = []

    def streaming_frame() -> dict[str, object]:
        frame = sys._getframe(1)
        while frame.f_code.co_name != "send_streamed":
            assert frame.f_back is not None
            frame = frame.f_back
        return frame.f_locals

    async def source() -> AsyncGenerator[bytes, None]:
        for i in range(4):
            if sent:  # asked for the next chunk: the one before has been written
                values = streaming_frame().values()
                held.append(any(value is sent[-1] for value in values))
            sent.append(bytes([65 + i]) * 1000)
            yield sent[-1]

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 4000
        return await send_streamed(request, resp, source())

    app = web.Application()
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    resp = await client.get("/")
    assert await resp.read() == b"".join(sent)
    assert held == [False, False, False]

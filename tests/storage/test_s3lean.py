"""The hot path's own request writing and small-answer reading (``s3lean``): the bytes it
sends, the heads it accepts, connections reused, replaced when the store closed them and
bounded by --max-connections, and every answer it does not read itself left to aiohttp.

A raw keep-alive server plays the store, answering every request with the bytes a test
gives it, so each framing case is exact; over plain TCP and TLS, on asyncio's loop and on
uvloop (the server's), since the connection's protocol is swapped for the exchange.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvloop

from gateway.storage.s3 import S3Store
from gateway.storage.s3lean import SMALL_BODY, parse_head, request_head
from tests.servers import moto_settings

ETAG = '"0123456789abcdef0123456789abcdef"'


def answer(body: bytes, *, total: int | None = None, extra: str = "",
           length: int | None = None) -> bytes:
    """A 206 for the first ``len(body)`` bytes of an object of ``total`` bytes."""
    total = len(body) if total is None else total
    end = max(len(body) - 1, 0)
    head = ("HTTP/1.1 206 Partial Content\r\n"
            f"ETag: {ETAG}\r\nLast-Modified: Mon, 30 Nov 2026 08:00:00 GMT\r\n"
            f"Content-Range: bytes 0-{end}/{total}\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n{extra}\r\n")
    return head.encode() + body


@dataclass
class Store:
    """What the raw store saw: the request heads, connections opened, most at once."""

    url: str = ""
    heads: list[bytes] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set at each head


Serve = Callable[..., Awaitable[Store]]


async def start_store(reply: bytes, *, close_after: bool = False, drop_second: bool = False,
                      delay: float = 0.0, tls: ssl.SSLContext | None = None
                      ) -> tuple[Store, asyncio.Server]:
    """A raw store answering every request with ``reply``. ``close_after``: close each
    connection after its answer; ``drop_second``: close it when its second request
    arrives, unanswered (a keep-alive timeout racing it)."""
    store = Store()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        store.connections += 1
        store.open_now += 1
        store.most_open = max(store.most_open, store.open_now)
        try:
            while True:
                store.heads.append(await reader.readuntil(b"\r\n\r\n"))
                store.arrived.set()
                if drop_second and len(store.heads) % 2 == 0:
                    break
                await asyncio.sleep(delay)
                writer.write(reply)
                await writer.drain()
                if close_after:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            store.open_now -= 1
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    scheme = "https" if tls else "http"
    store.url = f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    return store, server


@pytest.fixture
async def raw_store() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def serve(reply: bytes, **options: Any) -> Store:
        store, server = await start_store(reply, **options)
        servers.append(server)
        return store

    yield serve
    for server in servers:
        server.close()
        await server.wait_closed()


async def received(raw: Store, heads: int) -> None:
    """Wait until the raw store has read ``heads`` requests: a fixed sleep is too short
    on a loaded machine, where the request may not have left yet."""
    async with asyncio.timeout(10):
        while len(raw.heads) < heads:
            raw.arrived.clear()
            await raw.arrived.wait()


async def read(store: S3Store, key: str, length: int) -> bytes:
    result = await store.get(key, 0, length)
    return b"".join([chunk async for chunk in result.body])


def test_a_request_is_its_line_and_headers_and_a_blank_line() -> None:
    assert request_head("GET", "/b/k?x=1", {"Host": "h", "Range": "bytes=0-9"}) == (
        b"GET /b/k?x=1 HTTP/1.1\r\nHost: h\r\nRange: bytes=0-9\r\n\r\n")


@pytest.mark.parametrize("value", ['"etag"\r\nX-Evil: 1', "a\nb", "a\rb"])
def test_a_header_value_with_a_line_break_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        request_head("GET", "/b/k", {"If-Match": value})


def test_an_answer_head_gives_status_headers_and_whether_to_keep_the_connection() -> None:
    status, headers, reusable = parse_head(
        b"HTTP/1.1 206 Partial Content\r\nETag: \"x\"\r\nx-amz-meta-a: 1\r\nx-amz-meta-a: 2")
    assert (status, headers["etag"], headers.getall("X-Amz-Meta-A"), reusable) == (
        206, '"x"', ["1", "2"], True)
    assert parse_head(b"HTTP/1.1 200 OK\r\nConnection: close")[2] is False
    assert parse_head(b"HTTP/1.0 200 OK")[2] is False
    assert parse_head(b"HTTP/1.0 200 OK\r\nConnection: keep-alive")[2] is True


@pytest.mark.parametrize("head", [
    b"SPDY/9 200 OK", b"HTTP/1.1 2x0 OK", b"HTTP/1.1 200 OK\r\nno colon here",
    b"HTTP/1.1 200 OK\r\n: no name", b"HTTP/1.1 200 OK\r\nName : space before colon",
])
def test_a_broken_answer_head_is_refused(head: bytes) -> None:
    with pytest.raises(ValueError):
        parse_head(head)


async def test_a_small_answer_is_read_whole_and_its_connection_used_again(
    raw_store: Serve,
) -> None:
    raw = await raw_store(answer(b"four kib or so"))
    async with S3Store("bkt", moto_settings(raw.url)) as store:
        assert await read(store, "k", 14) == b"four kib or so"
        assert await read(store, "k", 14) == b"four kib or so"
        info = await store.head("k")
    assert info.etag == ETAG and info.size == 14
    assert len(raw.heads) == 3 and raw.connections == 1
    assert raw.heads[0].startswith(b"GET /bkt/k HTTP/1.1\r\n")
    assert b"\r\nRange: bytes=0-13\r\n" in raw.heads[0]
    assert raw.heads[2].startswith(b"HEAD /bkt/k HTTP/1.1\r\n")


async def test_a_request_the_store_dropped_on_a_reused_connection_is_sent_again(
    raw_store: Serve,
) -> None:
    # The store closes a kept-alive connection just as the next request arrives on it
    # (its idle timeout racing the request): that request goes out once more, on a fresh
    # connection, as aiohttp does.
    raw = await raw_store(answer(b"bytes"), drop_second=True)
    async with S3Store("bkt", moto_settings(raw.url)) as store:
        assert await read(store, "k", 5) == b"bytes"
        assert await read(store, "k", 5) == b"bytes"
    assert raw.connections == 2 and len(raw.heads) == 3


async def test_a_store_that_sent_more_than_it_announced_loses_the_connection(
    raw_store: Serve,
) -> None:
    raw = await raw_store(answer(b"bytes") + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nwrong")
    async with S3Store("bkt", moto_settings(raw.url)) as store:
        for _ in range(3):
            assert await read(store, "k", 5) == b"bytes"  # never the stray answer
    assert raw.connections == 3


async def test_a_connection_that_said_close_is_not_used_again(raw_store: Serve) -> None:
    raw = await raw_store(answer(b"bytes", extra="Connection: close\r\n"), close_after=True)
    async with S3Store("bkt", moto_settings(raw.url)) as store:
        for _ in range(3):
            assert await read(store, "k", 5) == b"bytes"
    assert raw.connections == 3 and len(raw.heads) == 3  # never a request on a closed one


@pytest.mark.parametrize("size", [SMALL_BODY + 1, 3 * SMALL_BODY + 17])
async def test_a_body_longer_than_small_streams_through_aiohttp(
    raw_store: Serve, size: int,
) -> None:
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    raw = await raw_store(answer(body))
    async with S3Store("bkt", moto_settings(raw.url)) as store:
        assert await asyncio.wait_for(read(store, "k", size), 5) == body
        assert await asyncio.wait_for(read(store, "k", size), 5) == body
    assert raw.connections == 1  # read to its end, the connection went back to the pool


async def test_a_chunked_answer_is_read_by_aiohttp(raw_store: Serve) -> None:
    head = answer(b"").split(b"Content-Length")[0]
    reply = head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    raw = await raw_store(reply.replace(b"0-0/0", b"0-10/11"))
    async with S3Store("bkt", moto_settings(raw.url)) as store:
        assert await asyncio.wait_for(read(store, "k", 11), 5) == b"hello world"


async def test_an_empty_objects_range_is_not_waited_for(raw_store: Serve) -> None:
    # s3rver answers a range of an empty object with "Content-Length: 1" and no byte.
    raw = await raw_store(answer(b"", total=0, length=1))
    async with S3Store("bkt", moto_settings(raw.url)) as store:
        result = await asyncio.wait_for(store.get("k", 0, 4096), 2)
        assert result.info.size == 0
        assert b"".join([c async for c in result.body]) == b""


async def test_concurrent_gets_never_open_more_than_max_connections(
    raw_store: Serve,
) -> None:
    raw = await raw_store(answer(b"x" * 1000), delay=0.01)
    async with S3Store("bkt", moto_settings(raw.url, max_connections=2)) as store:
        got = await asyncio.gather(*(read(store, f"k{i}", 1000) for i in range(12)))
    assert got == [b"x" * 1000] * 12
    assert raw.most_open <= 2 and len(raw.heads) == 12


async def test_a_get_cancelled_while_waiting_for_its_answer_gives_its_connection_up(
    raw_store: Serve,
) -> None:
    raw = await raw_store(answer(b"late"), delay=0.2)
    async with S3Store("bkt", moto_settings(raw.url, max_connections=1)) as store:
        waiting = asyncio.create_task(read(store, "k", 4))
        await received(raw, 1)  # sent, so waiting for its answer (0.2 s away)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # The one connection was closed, not left to a reader that is gone: the next GET
        # gets a fresh one and the answer it reads is its own.
        assert await asyncio.wait_for(read(store, "k", 4), 2) == b"late"
    assert raw.connections == 2


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for 127.0.0.1, and the CA file that trusts it."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return server, path


@pytest.mark.parametrize("new_loop", [asyncio.new_event_loop, uvloop.new_event_loop],
                         ids=["asyncio", "uvloop"])
@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_small_and_long_answers_on_each_loop_and_over_tls(
    new_loop: Callable[[], asyncio.AbstractEventLoop], tls: bool,
    test_ca: tuple[ssl.SSLContext, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    context, ca_file = test_ca
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca_file))  # botocore's session trusts the CA
    small, long = b"small bytes", bytes(range(256)) * 1024  # 256 KiB: streamed

    async def scenario() -> None:
        started = [await start_store(answer(body), tls=context if tls else None)
                   for body in (small, long)]
        stores, serving = [store for store, _ in started], [server for _, server in started]
        try:
            for store, body in zip(stores, (small, long), strict=True):
                async with S3Store("bkt", moto_settings(store.url)) as s3:
                    for _ in range(3):
                        got = await asyncio.wait_for(read(s3, "k", len(body)), 5)
                        assert got == body
                assert store.connections == 1 and len(store.heads) == 3
        finally:
            for server in serving:
                server.close()
                await server.wait_closed()

    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(scenario())

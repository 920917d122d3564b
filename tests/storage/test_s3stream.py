"""A hot-path GET's body (``s3stream.Body``): read past aiohttp on a plain connection in
whole pieces, byte for byte, the connection back in the pool for the next request; a body
cut by the store comes out short; one closed early closes its connection; a chunked body
stays with aiohttp. On asyncio's loop and on uvloop (the server's).

A raw HTTP server answers each request on a connection with the next scripted answer,
its body written in small pieces with pauses, as a network hands them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
import uvloop

from gateway.storage.s3stream import Body

PIECE = 256 * 1024
DATA = bytes(range(256)) * (3 * 1024 * 1024 // 256 + 77)  # 3 MiB and a bit: not whole pieces


def answer(body: bytes, length: int | None = None, chunked: bool = False) -> bytes:
    if chunked:
        head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        return head.encode() + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    size = len(body) if length is None else length
    return f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode() + body


LOOPS = pytest.mark.parametrize("new_loop", [asyncio.new_event_loop, uvloop.new_event_loop],
                                ids=["asyncio", "uvloop"])


def run(new_loop: Callable[[], asyncio.AbstractEventLoop],
        scenario: Callable[[], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(scenario())  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def scripted(answers: list[bytes],
                   hold: bool = True) -> AsyncIterator[tuple[str, list[int]]]:
    """A server that answers the requests of every connection with ``answers`` in turn,
    and counts the connections it accepted. After the last answer it holds the
    connection open (``hold``: no end of file wakes the client) or closes it."""
    accepted: list[int] = []
    queue = list(answers)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        with contextlib.closing(writer), contextlib.suppress(
                ConnectionError, asyncio.IncompleteReadError):
            while queue:
                await reader.readuntil(b"\r\n\r\n")
                data = queue.pop(0)
                for at in range(0, len(data), 40_000):  # as a network hands it over
                    writer.write(data[at:at + 40_000])
                    await writer.drain()
                    await asyncio.sleep(0)
            if hold:
                await reader.read()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/k", accepted
    finally:
        server.close()
        await server.wait_closed()


async def read_all(body: Body, n: int = PIECE, stop_after: int | None = None) -> list[bytes]:
    pieces = []
    while data := await body.read(n):
        pieces.append(bytes(data))
        if stop_after is not None and len(pieces) >= stop_after:
            break
    await body.aclose()
    return pieces


Loop = Callable[[], asyncio.AbstractEventLoop]


def session_() -> aiohttp.ClientSession:
    """A client whose reads give up after a while: a hang fails the test."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_read=10))


@LOOPS
def test_a_plain_body_comes_in_whole_pieces_and_its_connection_serves_again(
    new_loop: Loop,
) -> None:
    async def scenario() -> None:
        async with (scripted([answer(DATA), answer(b"short answer")]) as (url, accepted),
                    session_() as session):
            body = Body(await session.get(url))
            first = await body.read(PIECE)
            assert body._direct is not None  # read past aiohttp
            pieces = [first, *await read_all(body)]
            assert b"".join(pieces) == DATA
            # Whole pieces, but the first (what had arrived) and the last: every other
            # edge on a multiple of the piece, so on the blocks' edges.
            ends = list(itertools.accumulate(map(len, pieces)))
            assert all(len(p) <= PIECE for p in pieces)
            assert all(end % PIECE == 0 for end in ends[1:-1])
            assert len(pieces) <= len(DATA) // PIECE + 2
            # The next request goes out on the same connection, which hands aiohttp a
            # short answer at once (the socket's low-water mark was given back).
            again = Body(await session.get(url))
            assert b"".join(await read_all(again)) == b"short answer"
            assert len(accepted) == 1

    run(new_loop, scenario)


@LOOPS
def test_a_body_the_store_cuts_comes_out_short(new_loop: Loop) -> None:
    async def scenario() -> None:
        cut = answer(DATA[:PIECE + 1000], length=len(DATA))
        async with (scripted([cut], hold=False) as (url, _),
                    session_() as session):
            body = Body(await session.get(url))
            first = await body.read(PIECE)
            assert body._direct is not None
            assert first + b"".join(await read_all(body)) == DATA[:PIECE + 1000]

    run(new_loop, scenario)


@LOOPS
def test_a_body_closed_early_closes_its_connection(new_loop: Loop) -> None:
    async def scenario() -> None:
        async with (scripted([answer(DATA), answer(DATA)]) as (url, accepted),
                    session_() as session):
            body = Body(await session.get(url))
            [first] = await read_all(body, stop_after=1)
            assert first and DATA.startswith(first)
            assert b"".join(await read_all(Body(await session.get(url)))) == DATA
            assert len(accepted) == 2  # the first connection was mid-body: not reused

    run(new_loop, scenario)


@LOOPS
def test_a_chunked_body_stays_with_aiohttp(new_loop: Loop) -> None:
    async def scenario() -> None:
        async with (scripted([answer(DATA, chunked=True)]) as (url, _),
                    session_() as session):
            body = Body(await session.get(url))
            first = await body.read(PIECE)
            assert body._direct is None
            assert first + b"".join(await read_all(body)) == DATA

    run(new_loop, scenario)

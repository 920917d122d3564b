"""The shaping proxy of the benchmark forwards bytes unchanged and counts them exactly.

Its delays and pacing are what it is for, but they are timing: not asserted here. What must be
exact is that nothing is altered (S3 signatures cover the Host header and the body) and that
the byte counters equal what crossed it, since the benchmark reports ratios built on them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from bench.proxy import RequestFramer, ShapingProxy, split_at
from tests.bench.backend import RecordingBackend

FAST = 10**12  # bytes per second: pacing that never waits in a test


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def put(path: str, body: bytes) -> bytes:
    head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def chunked_put(path: str, chunks: list[bytes]) -> bytes:
    head = f"PUT {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    body = b"".join(f"{len(c):x};ext=1\r\n".encode() + c + b"\r\n" for c in chunks)
    return head + body + b"0\r\nX-Trailer: yes\r\n\r\n"


def starts_of(stream: bytes, step: int) -> list[int]:
    """Feed ``stream`` to a framer ``step`` bytes at a time; request starts as stream offsets."""
    framer = RequestFramer()
    found: list[int] = []
    for offset in range(0, len(stream), step):
        found += [offset + s for s in framer.feed(stream[offset : offset + step])]
    return found


# ---- request framing ---------------------------------------------------------------------


@pytest.mark.parametrize("step", [1, 7, 4096])
def test_framer_finds_each_pipelined_request_head(step: int) -> None:
    first, second, third = get("/a"), get("/b?x=1"), get("/c")
    stream = first + second + third
    assert starts_of(stream, step) == [0, len(first), len(first) + len(second)]


@pytest.mark.parametrize("step", [1, 5, 65536])
def test_framer_skips_a_content_length_body_that_looks_like_a_request(step: int) -> None:
    sneaky = get("/not-a-request") * 3
    upload = put("/object", sneaky)
    stream = upload + get("/next")
    assert starts_of(stream, step) == [0, len(upload)]


@pytest.mark.parametrize("step", [1, 3, 65536])
def test_framer_skips_chunked_bodies_and_their_trailers(step: int) -> None:
    upload = chunked_put("/object", [b"GET / HTTP/1.1\r\n\r\n", os.urandom(300), b"x"])
    stream = upload + get("/after")
    assert starts_of(stream, step) == [0, len(upload)]


def test_framer_passes_through_what_it_cannot_follow() -> None:
    framer = RequestFramer()
    upgrade = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"
    assert framer.feed(upgrade) == [0]
    assert framer.feed(get("/looks-like-a-request")) == []
    assert framer.passthrough


def test_split_at_cuts_pieces_that_rejoin_to_the_input() -> None:
    data = b"0123456789"
    pieces = split_at(data, [0, 4, 9])
    assert pieces == [(True, b"0123"), (True, b"45678"), (True, b"9")]
    assert split_at(data, []) == [(False, data)]
    assert b"".join(p for _, p in split_at(data, [3])) == data


# ---- forwarding and counting -------------------------------------------------------------


@pytest.fixture
async def backend() -> AsyncIterator[RecordingBackend]:
    server = RecordingBackend()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def proxy(backend: RecordingBackend) -> AsyncIterator[ShapingProxy]:
    shaping = ShapingProxy("127.0.0.1", backend.port, bandwidth=FAST, latency=0.001)
    await shaping.start()
    yield shaping
    await shaping.close()


async def exchange(port: int, requests: bytes, reply_bytes: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(requests)
    await writer.drain()
    received = await reader.readexactly(reply_bytes)
    writer.close()
    await writer.wait_closed()
    return received


def reply_size(n: int) -> int:
    body = n * 1000 + 10
    return len(f"HTTP/1.1 200 OK\r\nContent-Length: {body}\r\n\r\n") + body


async def test_proxy_forwards_requests_and_replies_unchanged(
    backend: RecordingBackend, proxy: ShapingProxy
) -> None:
    requests = get("/bench/a") + put("/bench/b", os.urandom(300_000)) + get("/bench/c")
    received = await exchange(proxy.port, requests, sum(reply_size(n) for n in (1, 2, 3)))
    assert bytes(backend.received) == requests
    assert received == bytes(backend.sent)


async def test_proxy_counts_exactly_the_bytes_it_forwards(
    backend: RecordingBackend, proxy: ShapingProxy
) -> None:
    first = get("/x") + put("/y", os.urandom(70_000))
    second = get("/z")
    await exchange(proxy.port, first, reply_size(1) + reply_size(2))
    await exchange(proxy.port, second, reply_size(1))
    assert proxy.stats.response_bytes == len(backend.sent) == 2 * reply_size(1) + reply_size(2)
    assert proxy.stats.request_bytes == len(first) + len(second)
    assert proxy.stats.requests == 3
    assert proxy.stats.connections == 2


async def test_proxy_paces_without_changing_a_large_reply(backend: RecordingBackend) -> None:
    # A real (low) bandwidth cap: the bytes must still arrive whole and in order.
    shaping = ShapingProxy("127.0.0.1", backend.port, bandwidth=20_000_000, latency=0.0)
    await shaping.start()
    try:
        requests = b"".join(get(f"/{n}") for n in range(1, 41))
        size = sum(reply_size(n) for n in range(1, 41))
        received = await exchange(shaping.port, requests, size)
    finally:
        await shaping.close()
    assert received == bytes(backend.sent)
    assert shaping.stats.response_bytes == size


async def test_proxy_counts_connections_it_cannot_frame(
    backend: RecordingBackend, proxy: ShapingProxy
) -> None:
    upgrade = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"
    received = await exchange(proxy.port, upgrade, reply_size(1))
    assert received == bytes(backend.sent)
    assert proxy.stats.unframed == 1

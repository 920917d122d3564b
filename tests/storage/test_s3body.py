"""An upload's body (``s3body.Body``) goes to the store as it is: aiohttp sends it with
``BodyPayload``, in one write of the bytes themselves (not 256 KiB copies, one per trip
around the loop), the whole body again on a retry, and byte for byte over a real
connection, as aiobotocore hands it over (wrapped in its proxy)."""

from __future__ import annotations

import asyncio

import aiohttp
from aiobotocore._endpoint_helpers import _IOBaseWrapper
from aiohttp import payload

from gateway.storage.s3body import Body, BodyPayload

DATA = bytes(range(256)) * (3 * 1024 * 1024 // 256 + 77)  # 3 MiB and a bit


class RecordingWriter:
    """The part of aiohttp's stream writer a payload uses: what it was asked to write."""

    def __init__(self) -> None:
        self.writes: list[memoryview] = []

    async def write(self, chunk: memoryview) -> None:
        self.writes.append(chunk)


def sent_as(body: Body) -> payload.Payload:
    return payload.PAYLOAD_REGISTRY.get(_IOBaseWrapper(body), disposition=None)


def test_aiohttp_sends_a_body_wrapped_by_aiobotocore_with_the_body_payload() -> None:
    sent = sent_as(Body(DATA))
    assert isinstance(sent, BodyPayload)
    assert sent.size == len(DATA)


async def test_the_body_goes_out_in_one_write_of_its_own_bytes() -> None:
    writer = RecordingWriter()
    await sent_as(Body(DATA)).write_with_length(writer, None)  # type: ignore[arg-type]
    assert len(writer.writes) == 1
    assert writer.writes[0].obj is DATA  # a view of the bytes: nothing copied


async def test_a_retry_sends_the_whole_body_again() -> None:
    sent = sent_as(Body(DATA))
    writer = RecordingWriter()
    await sent.write(writer)  # type: ignore[arg-type]
    await sent.write(writer)  # type: ignore[arg-type]
    assert [bytes(w) for w in writer.writes] == [DATA, DATA]


async def test_a_content_length_caps_what_is_written() -> None:
    writer = RecordingWriter()
    await sent_as(Body(DATA)).write_with_length(writer, 1000)  # type: ignore[arg-type]
    assert [bytes(w) for w in writer.writes] == [DATA[:1000]]


async def test_a_put_carries_the_body_byte_for_byte() -> None:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        received.append(await reader.readexactly(length))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session, session.put(
            f"http://127.0.0.1:{port}/part", data=_IOBaseWrapper(Body(DATA)),
            headers={"Content-Length": str(len(DATA))},
        ) as resp:
            assert resp.status == 200
    finally:
        server.close()
        await server.wait_closed()
    assert received == [DATA]

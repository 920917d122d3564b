"""A raw HTTP/1.1 backend that records what reaches it: behind the shaping proxy (its tests)
and behind the forwarder contender (a run's hop), where a test must see bytes arrive
unchanged."""

from __future__ import annotations

import asyncio


class RecordingBackend:
    """A raw HTTP/1.1 server: records every byte it receives; answers request n with a body
    of n * 1000 + 10 known bytes, so replies differ in size and content."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.sent = bytearray()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.received += head
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.received += await reader.readexactly(length)
                n += 1
                body = bytes((n + i) % 251 for i in range(n * 1000 + 10))
                reply = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
                self.sent += reply
                writer.write(reply)
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

"""A shaping TCP proxy that makes a loopback S3 server behave like a store across a network.

On loopback every S3 request is answered in well under a millisecond at gigabytes per second,
which hides exactly what a gateway must work around in the cloud: each request pays a round
trip, and one TCP stream carries only so many bytes per second. Per connection, this proxy holds
back every new HTTP request head by ``latency`` seconds and paces each direction to
``bandwidth`` bytes per second.

It works on TCP, not HTTP: bytes are forwarded unchanged, so the Host header, and with it every
request signature, stays valid. To know where a request begins it follows HTTP/1.1 request
framing (Content-Length and chunked bodies) on the client side only. It counts what it forwards,
so that "backend bytes per served byte" is measured rather than guessed.

Run on its own (the benchmark does this, in a process of its own so that its CPU is not the load
generator's), it also answers ``GET /stats`` on a control port with the counters as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

MB = 1_000_000
READ_SIZE = 128 * 1024  # bytes forwarded per step; at 50 MB/s one step is about 2.6 ms
MAX_HEAD = 64 * 1024  # a request head longer than this stops the framing (pass through)


@dataclass
class ProxyStats:
    connections: int = 0
    requests: int = 0
    request_bytes: int = 0  # client -> backend
    response_bytes: int = 0  # backend -> client
    unframed: int = 0  # connections whose requests could not be followed (no more delays)


class RequestFramer:
    """Follows the client side of an HTTP/1.1 connection and says where each request starts.

    ``feed`` takes the next bytes the client sent and returns the offsets within them at which
    a new request head begins. Bodies are skipped by Content-Length or chunked framing. Anything
    it cannot follow (an upgrade, a huge or broken head) turns it into a pass-through that
    reports no further starts: the proxy then still forwards and counts, without delays.
    """

    _START, _HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _PASS = range(7)

    def __init__(self) -> None:
        self._state = self._START
        self._buf = bytearray()  # the head, chunk-size line or trailer line being collected
        self._remaining = 0  # body or chunk bytes (chunk data includes its CRLF) still to skip

    @property
    def passthrough(self) -> bool:
        return self._state == self._PASS

    def feed(self, data: bytes) -> list[int]:
        starts: list[int] = []
        pos = 0
        while pos < len(data):
            state = self._state
            if state == self._PASS:
                break
            if state == self._START:
                starts.append(pos)
                self._state = self._HEAD
            elif state in (self._BODY, self._CHUNK_DATA):
                take = min(self._remaining, len(data) - pos)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = self._START if state == self._BODY else self._CHUNK_SIZE
            elif state == self._HEAD:
                pos = self._collect(data, pos, b"\r\n\r\n", self._end_head)
            else:  # chunk-size line or trailer line
                pos = self._collect(data, pos, b"\r\n", self._end_line)
        return starts

    def _collect(
        self, data: bytes, pos: int, terminator: bytes, done: Callable[[bytes], None]
    ) -> int:
        """Append to the buffer up to ``terminator``; call ``done`` with the completed unit."""
        before = len(self._buf)
        self._buf += data[pos:]
        found = self._buf.find(terminator, max(0, before - len(terminator) + 1))
        if found < 0:
            if len(self._buf) > MAX_HEAD:
                self._state = self._PASS
            return len(data)
        unit = bytes(self._buf[: found + len(terminator)])
        self._buf.clear()
        done(unit)
        return pos + len(unit) - before

    def _end_head(self, head: bytes) -> None:
        if not head.strip(b"\r\n"):
            # Stray CRLFs between requests (RFC 9112 2.2 allows them): still waiting.
            self._state = self._HEAD
            return
        lines = head.lstrip(b"\r\n").split(b"\r\n")
        request_line = lines[0].split(b" ")
        if len(request_line) != 3 or request_line[0].upper() == b"CONNECT":
            self._state = self._PASS
            return
        length = 0
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    self._state = self._PASS
                    return
            elif name == b"transfer-encoding":
                chunked = value.strip().lower().endswith(b"chunked")
            elif name == b"upgrade":
                self._state = self._PASS
                return
        if chunked:
            self._state = self._CHUNK_SIZE
        elif length > 0:
            self._state, self._remaining = self._BODY, length
        else:
            self._state = self._START

    def _end_line(self, line: bytes) -> None:
        if self._state == self._TRAILER:
            if line == b"\r\n":  # the empty line that ends the trailer section
                self._state = self._START
            return
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            self._state = self._PASS
            return
        if size == 0:
            self._state = self._TRAILER
        else:
            self._state, self._remaining = self._CHUNK_DATA, size + 2


def split_at(data: bytes, starts: list[int]) -> list[tuple[bool, bytes]]:
    """Cut ``data`` into pieces at ``starts``; each piece says whether it begins a request."""
    pieces: list[tuple[bool, bytes]] = []
    cuts = [0, *(s for s in starts if s > 0), len(data)]
    begins = set(starts)
    for a, b in itertools.pairwise(cuts):
        if b > a:
            pieces.append((a in begins, data[a:b]))
    return pieces


class Pacer:
    """Paces one direction of one connection to ``rate`` bytes per second, with no saved-up
    burst: idle time does not buy a later burst (a TCP stream's rate does not either)."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._next = 0.0

    async def pace(self, nbytes: int) -> None:
        if self._rate <= 0:
            return
        loop = asyncio.get_running_loop()
        wait = self._next - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._next = max(self._next, loop.time()) + nbytes / self._rate


class ShapingProxy:
    """Listens on 127.0.0.1; every connection is forwarded to one backend, shaped."""

    def __init__(
        self,
        backend_host: str,
        backend_port: int,
        bandwidth: float = 50 * MB,
        latency: float = 0.020,
    ) -> None:
        self.backend = (backend_host, backend_port)
        self.bandwidth = bandwidth
        self.latency = latency
        self.stats = ProxyStats()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._accept, host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            backend_r, backend_w = await asyncio.open_connection(*self.backend)
        except OSError:
            client_w.close()
            return
        self.stats.connections += 1
        up = asyncio.create_task(self._upstream(client_r, backend_w))
        try:
            # The connection lives as long as the backend side: it answers the last request
            # even after the client has half-closed, and a backend close ends it.
            await self._downstream(backend_r, client_w)
        finally:
            up.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await up
            for w in (client_w, backend_w):
                w.close()
            for w in (client_w, backend_w):
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await w.wait_closed()

    async def _upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = RequestFramer()
        pacer = Pacer(self.bandwidth)
        try:
            while data := await reader.read(READ_SIZE):
                was_framed = not framer.passthrough
                starts = framer.feed(data)
                if was_framed and framer.passthrough:
                    self.stats.unframed += 1
                for begins, piece in split_at(data, starts):
                    if begins:
                        self.stats.requests += 1
                        if self.latency > 0:
                            await asyncio.sleep(self.latency)
                    await pacer.pace(len(piece))
                    writer.write(piece)
                    self.stats.request_bytes += len(piece)
                    await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            writer.close()  # the client went away: end the backend side too

    async def _downstream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        pacer = Pacer(self.bandwidth)
        with contextlib.suppress(OSError):
            while data := await reader.read(READ_SIZE):
                await pacer.pace(len(data))
                writer.write(data)
                self.stats.response_bytes += len(data)
                await writer.drain()


# ---- running on its own ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__)
    parser.add_argument("--backend", required=True, help="backend URL, e.g. http://127.0.0.1:9000")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (127.0.0.1)")
    parser.add_argument("--control-port", type=int, default=0, help="port of GET /stats")
    parser.add_argument("--bandwidth", type=float, default=50.0, help="MB/s per connection")
    parser.add_argument("--latency", type=float, default=20.0, help="ms per request")
    return parser


async def serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    backend = urlsplit(args.backend)
    proxy = ShapingProxy(
        backend.hostname or "127.0.0.1",
        backend.port or 80,
        bandwidth=args.bandwidth * MB,
        latency=args.latency / 1000,
    )
    await proxy.start(port=args.port)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(asdict(proxy.stats))

    app = web.Application()
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.control_port)
    await site.start()
    control = runner.addresses[0][1]
    print(json.dumps({"port": proxy.port, "control_port": control}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await proxy.close()


def main() -> None:
    args = build_parser().parse_args()
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(args))
    except ImportError:  # pragma: no cover - uvloop is a dependency of the project
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()

"""What one client may ask of the server, enforced with short, clear refusals.

Three parts:

* ``Limits.middleware``: uploads in progress (503 with Retry-After past ``max_uploads``),
  declared body sizes (413 from ``Content-Length`` or Finder's
  ``X-Expected-Entity-Length`` before a byte is read). PUT bodies are bounded by
  ``--max-upload-size``, every other body (PROPFIND, PROPPATCH, LOCK XML) by
  ``--max-xml-bytes``.
* ``GuardedConnection``: every client connection goes through this thin protocol in front
  of aiohttp's. It counts open connections (past ``max_client_connections`` a new one gets
  a 503 and is closed), sees every byte as it arrives, and so can stop a chunked body the
  moment it passes its limit: the reader fails with ``BodyTooLarge`` before the handler
  could see the end of the body, so an oversized upload is never committed.
* A sweeper that cuts clients that go silent while their request body is awaited for
  ``client_timeout`` seconds (a stall caused by our own back-pressure does not count).
  Idle connections and slow request heads are bounded by aiohttp's keep-alive timeout.

aiohttp answers a too-long request line or header line itself, with 400 (its parser has
no way to say 414 or 431).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import StreamReader

from gateway.engine.upload import announced_length
from gateway.errors import BadRequest, TooLarge
from gateway.responses import plain
from gateway.settings import LimitSettings

log = logging.getLogger("bucketdav.limits")

RETRY_AFTER_UPLOADS = 5  # seconds a client is asked to wait when uploads are saturated


class BodyTooLarge(TooLarge):
    """A request body passed its limit while it was being received (413)."""


class ClientTooSlow(web.HTTPRequestTimeout):
    """The client sent nothing for ``client_timeout`` while its body was awaited (408)."""


class _ClientFaults(logging.Filter):
    """Keep what clients cause out of the error log.

    aiohttp reads what is left of a body after the response ("lingering"); a body we
    stopped on purpose raises our refusal again there: expected, dropped. A request head
    its parser refuses (too long, malformed) is logged by aiohttp as an error with a
    traceback; anyone can send one, so it becomes one INFO line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (BodyTooLarge, ClientTooSlow)):
            return False
        if isinstance(exc, HttpProcessingError) and isinstance(record.args, tuple):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = str(record.msg) + ": %s"
            record.args = (*record.args, str(exc.message).strip().splitlines()[0][:200])
            record.exc_info = record.exc_text = None
        return True



def declared_length(request: web.BaseRequest) -> int | None:
    """The body size the client announced: Content-Length, else X-Expected-Entity-Length.
    Announcements that are malformed or disagree are the PUT handler's 400, not a size."""
    try:
        return announced_length(request.headers, request.content_length)
    except BadRequest:
        return request.content_length


@dataclass
class BodyWatch:
    """One request body being received on a guarded connection."""

    content: StreamReader
    max_bytes: int | None
    flag: str  # the option that sets max_bytes, for the refusal message
    tripped_at: float | None = None

    def exceeded(self) -> bool:
        return self.max_bytes is not None and self.content.total_bytes > self.max_bytes

    def trip(self, exc: BaseException, now: float) -> None:
        if self.tripped_at is None:
            self.tripped_at = now
            self.content.set_exception(exc)


class GuardedConnection(asyncio.Protocol):
    """A client connection: forwards everything to aiohttp's protocol, watching bytes."""

    def __init__(self, inner: asyncio.Protocol, limits: Limits) -> None:
        self.inner = inner
        self.limits = limits
        self.transport: asyncio.Transport | None = None
        self.last_rx = 0.0
        self.watch: BodyWatch | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.last_rx = self.limits.now()
        self.limits.opened(self)
        self.inner.connection_made(self.transport)

    def data_received(self, data: bytes) -> None:
        self.last_rx = self.limits.now()
        self.inner.data_received(data)
        watch = self.watch
        if watch is not None and watch.exceeded():
            watch.trip(self.limits.too_large(watch), self.last_rx)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.limits.closed(self)
        self.watch = None
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class TooManyConnections(asyncio.Protocol):
    """Answers 503 at once and closes: the server already holds its connection limit."""

    BODY = b"too many connections: retry later\n"
    REPLY = (
        b"HTTP/1.1 503 Service Unavailable\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: " + str(len(BODY)).encode() + b"\r\n"
        b"Retry-After: 1\r\nConnection: close\r\n\r\n" + BODY
    )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)
        stream.write(self.REPLY)
        stream.close()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Limits:
    """Per-app limit state: uploads in progress, open connections, watched bodies."""

    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings
        self.uploads = 0
        self.refused_connections = 0
        self.connections: dict[asyncio.Transport, GuardedConnection] = {}
        self.in_flight = 0  # requests inside the app's handlers
        self.draining = False  # shutting down: every response closes its connection
        self._idle: asyncio.Event | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    # ---- connections ---------------------------------------------------------------------

    def protocol_factory(
        self, make: Callable[[], asyncio.Protocol]
    ) -> Callable[[], asyncio.Protocol]:
        """Wrap aiohttp's protocol factory (``runner.server``) for ``loop.create_server``."""

        def factory() -> asyncio.Protocol:
            if len(self.connections) >= self.settings.max_client_connections:
                self.refused_connections += 1
                return TooManyConnections()
            return GuardedConnection(make(), self)

        return factory

    def opened(self, conn: GuardedConnection) -> None:
        assert conn.transport is not None
        self.connections[conn.transport] = conn

    def closed(self, conn: GuardedConnection) -> None:
        if conn.transport is not None:
            self.connections.pop(conn.transport, None)

    def too_large(self, watch: BodyWatch) -> BodyTooLarge:
        return BodyTooLarge(f"request body larger than {watch.max_bytes} bytes ({watch.flag})")

    # ---- requests --------------------------------------------------------------------------

    def body_limit(self, method: str) -> tuple[int | None, str]:
        if method == "PUT":
            return self.settings.max_upload_size, "--max-upload-size"
        return self.settings.max_xml_bytes, "--max-xml-bytes"

    def refusal(self, request: web.BaseRequest) -> web.Response | None:
        """What can be refused from the request head alone (also before 100-continue)."""
        max_bytes, flag = self.body_limit(request.method)
        declared = declared_length(request)
        if max_bytes is not None and declared is not None and declared > max_bytes:
            return plain(413, f"request body of {declared} bytes is larger than {max_bytes} "
                         f"bytes ({flag})")
        if request.method == "PUT" and self.uploads >= self.settings.max_uploads:
            return plain(503, "too many uploads in progress: retry later",
                         {"Retry-After": str(RETRY_AFTER_UPLOADS)})
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        max_bytes, flag = self.body_limit(request.method)
        upload = request.method == "PUT"
        conn = self.connections.get(request.transport) if request.transport else None
        watch = None
        if conn is not None and request.body_exists:
            watch = conn.watch = BodyWatch(request.content, max_bytes, flag)
            if watch.exceeded():  # bytes that came with the head are already counted
                watch.trip(self.too_large(watch), self.now())
            self._start_sweeper()
        self.uploads += upload
        self.in_flight += 1
        try:
            response = await handler(request)
        finally:
            self.uploads -= upload
            self.in_flight -= 1
            if self.in_flight == 0 and self._idle is not None:
                self._idle.set()
            if conn is not None and conn.watch is watch:
                conn.watch = None
        if self.draining or (watch is not None and watch.tripped_at is not None):
            response.force_close()  # shutting down, or the rest of the body is not read
        return response

    async def drained(self, grace: float) -> bool:
        """Wait up to ``grace`` s for the requests in flight to end; True if they did."""
        self.draining = True
        if self.in_flight == 0:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            return False
        return True

    # ---- slow clients ----------------------------------------------------------------------

    def _start_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_while_watched())

    async def _sweep_while_watched(self) -> None:
        tick = max(0.05, min(1.0, self.settings.client_timeout / 4))
        while any(c.watch is not None for c in self.connections.values()):
            await asyncio.sleep(tick)
            self.sweep(self.now())

    def sweep(self, now: float) -> None:
        """Stop bodies whose client went silent; close connections that stay stuck."""
        timeout = self.settings.client_timeout
        for conn in list(self.connections.values()):
            watch, transport = conn.watch, conn.transport
            if watch is None or transport is None or watch.content.is_eof():
                continue
            if watch.tripped_at is not None:
                if now - watch.tripped_at > timeout:  # the handler never answered
                    transport.close()
                continue
            if not transport.is_reading():  # paused by our back-pressure: not its fault
                conn.last_rx = now
            elif now - conn.last_rx > timeout:
                log.info("client %s sent nothing for %.0f s: request body abandoned",
                         transport.get_extra_info("peername"), timeout)
                watch.trip(ClientTooSlow(text=f"no data for {timeout:g} s: request body "
                                         "abandoned (--client-timeout)\n"), now)

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: keep client faults out of aiohttp's error log while
        the app runs; stop the sweeper with the app."""
        server_log = logging.getLogger("aiohttp.server")
        faults = _ClientFaults()
        server_log.addFilter(faults)
        yield
        server_log.removeFilter(faults)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper


LIMITS = web.AppKey("bucketdav.limits", Limits)

"""What one client may ask of the server, enforced with short, clear refusals.

Every resource is bounded per client as well as in total, so that one client cannot hold
every slot. Three parts:

* ``Limits.middleware``: uploads in progress (429 with Retry-After past
  ``max_uploads_per_client`` for one user, or one address for anonymous clients; 503 past
  ``max_uploads`` in total), declared body sizes (413 from ``Content-Length`` or Finder's
  ``X-Expected-Entity-Length`` before a byte is read). PUT bodies are bounded by
  ``--max-upload-size``, every other body (PROPFIND, PROPPATCH, LOCK XML) by
  ``--max-xml-bytes``.
* ``GuardedConnection``: every client connection goes through this thin protocol in front
  of aiohttp's. It counts open connections, in total (past ``max_client_connections`` a new
  one gets a 503 and is closed) and per address (past ``max_connections_per_address``: 429
  and closed), sees every byte as it arrives, and so can stop a chunked body the moment it
  passes its limit: the reader fails with ``BodyTooLarge`` before the handler could see
  the end of the body, so an oversized upload is never committed.
* A sweeper that closes a connection whose request head is not complete within
  ``header_timeout`` (408), and cuts a request body whose client goes silent for
  ``client_timeout`` seconds or, after ``upload_rate_grace`` seconds, sends slower than
  ``min_upload_rate`` (408; the upload is aborted). A stall caused by our own
  back-pressure, or by a ``100 Continue`` not yet sent, does not count against the
  client. Idle keep-alive connections are bounded by aiohttp's keep-alive timeout.

aiohttp answers a too-long request line or header line itself, with 400 (its parser has
no way to say 414 or 431).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import StreamReader

from gateway.auth.proxies import TrustedProxies
from gateway.engine.upload import announced_length
from gateway.errors import BadRequest, TooLarge
from gateway.ops.accesslog import parser_refusal
from gateway.ops.clients import address_key, canned_reply, client_of
from gateway.responses import CONTINUE_PENDING, plain
from gateway.settings import LimitSettings

log = logging.getLogger("bucketdav.limits")

RETRY_AFTER_UPLOADS = 5  # seconds a client is asked to wait when uploads are saturated
RETRY_AFTER_CONNECTIONS = 1


class BodyTooLarge(TooLarge):
    """A request body passed its limit while it was being received (413)."""


class ClientTooSlow(web.HTTPRequestTimeout):
    """The client sent nothing for ``client_timeout`` while its body was awaited (408)."""


class _ClientFaults(logging.Filter):
    """Keep what clients cause out of the error log.

    aiohttp reads what is left of a body after the response ("lingering"); a body we
    stopped on purpose raises our refusal again there: expected, dropped. A request head
    its parser refuses (too long, malformed) is logged by aiohttp as an error with a
    traceback; anyone can send one, so it becomes one INFO line that describes the fault
    without quoting the client's bytes (they may hold a password).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (BodyTooLarge, ClientTooSlow)):
            return False
        if isinstance(exc, HttpProcessingError) and isinstance(record.args, tuple):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = str(record.msg) + ": %s"
            record.args = (*record.args, parser_refusal(exc))
            record.exc_info = record.exc_text = None
        return True


def declared_length(request: web.BaseRequest) -> int | None:
    """The body size the client announced: Content-Length, else X-Expected-Entity-Length.
    Announcements that are malformed or disagree are the PUT handler's 400, not a size."""
    try:
        return announced_length(request.headers, request.content_length)
    except BadRequest:
        return request.content_length


def _never() -> bool:
    return False


@dataclass
class BodyWatch:
    """One request body being received on a guarded connection."""

    content: StreamReader
    max_bytes: int | None
    flag: str  # the option that sets max_bytes, for the refusal message
    tripped_at: float | None = None
    # True while the client waits for us (a ``100 Continue`` not yet sent): not its fault.
    waiting: Callable[[], bool] = field(default=_never)
    # The current window of the minimum-rate check: since when, from what byte count.
    window_start: float = 0.0
    window_bytes: int = 0

    def exceeded(self) -> bool:
        return self.max_bytes is not None and self.content.total_bytes > self.max_bytes

    def trip(self, exc: BaseException, now: float) -> None:
        if self.tripped_at is None:
            self.tripped_at = now
            self.content.set_exception(exc)

    def restart_window(self, now: float) -> None:
        self.window_start, self.window_bytes = now, self.content.total_bytes

    def too_slow(self, now: float, rate: int, window: float) -> float | None:
        """The rate of a window that ended below ``rate`` bytes/s, else None (a window
        that ended fast enough starts the next one)."""
        elapsed = now - self.window_start
        if rate <= 0 or elapsed < window:
            return None
        got = (self.content.total_bytes - self.window_bytes) / elapsed
        if got < rate:
            return got
        self.restart_window(now)
        return None


class GuardedConnection(asyncio.Protocol):
    """A client connection: forwards everything to aiohttp's protocol, watching bytes."""

    def __init__(self, inner: asyncio.Protocol, limits: Limits) -> None:
        self.inner = inner
        self.limits = limits
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = None
        self.address = "?"
        self.admitted = False  # False: refused, aiohttp's protocol never sees it
        self.last_rx = 0.0
        self.watch: BodyWatch | None = None
        self.requests = 0  # inside the app (head complete) on this connection
        # Since when a request head is awaited: from connecting, then from the first byte
        # after a request (nginx's client_header_timeout); None while idle or busy.
        self.head_since: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer = self.transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) and peer else None
        self.address = address_key(self.peer)
        self.last_rx = self.head_since = self.limits.now()
        refused = self.limits.opened(self)
        if refused is not None:
            self.transport.write(refused)
            self.transport.close()
            return
        self.admitted = True
        self.inner.connection_made(self.transport)

    def data_received(self, data: bytes) -> None:
        if not self.admitted:
            return
        self.last_rx = self.limits.now()
        # Bare CRLFs between requests (some clients add them after a body) start no head.
        if self.requests == 0 and self.head_since is None and data.strip(b"\r\n"):
            self.head_since = self.last_rx
        self.inner.data_received(data)
        watch = self.watch
        if watch is not None and watch.exceeded():
            watch.trip(self.limits.too_large(watch), self.last_rx)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.admitted:
            return
        self.limits.closed(self)
        self.watch = None
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()


class TooManyConnections(asyncio.Protocol):
    """Answers 503 at once and closes: the server already holds its connection limit."""

    REPLY = canned_reply("503 Service Unavailable", "too many connections to this server "
                         "(--max-client-connections): retry later", RETRY_AFTER_CONNECTIONS)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)
        stream.write(self.REPLY)
        stream.close()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Limits:
    """Per-app limit state: uploads in progress, open connections, watched bodies."""

    def __init__(self, settings: LimitSettings, proxies: TrustedProxies | None = None) -> None:
        self.settings = settings
        # Their connections carry many clients: bounded by the total, not per address.
        self.proxies = proxies if proxies is not None else TrustedProxies()
        self.uploads = 0
        self.uploads_by_client: dict[str, int] = {}
        self.refused_connections = 0
        self.connections: dict[asyncio.Transport, GuardedConnection] = {}
        self.per_address: dict[str, int] = {}
        self.per_address_reply = canned_reply(
            "429 Too Many Requests",
            f"too many connections from this address (--max-connections-per-address "
            f"{settings.max_connections_per_address}): retry later", RETRY_AFTER_CONNECTIONS)
        self.in_flight = 0  # requests inside the app's handlers
        self.draining = False  # shutting down: every response closes its connection
        self._idle: asyncio.Event | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    # ---- connections ---------------------------------------------------------------------

    def protocol_factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        """Wrap aiohttp's protocol factory (``runner.server``) for ``loop.create_server``."""
        server.request_handler = self._tracked(server.request_handler)

        def factory() -> asyncio.Protocol:
            if len(self.connections) >= self.settings.max_client_connections:
                self.refused_connections += 1
                return TooManyConnections()
            return GuardedConnection(server(), self)

        return factory

    def _tracked(self, handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
                 ) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
        """aiohttp's request handler, marking the connection busy: its head is complete
        (outermost, so that time spent checking passwords or ``Expect`` counts as busy)."""

        async def tracked(request: web.BaseRequest) -> web.StreamResponse:
            conn = self.connections.get(request.transport) if request.transport else None
            if conn is None:
                return await handler(request)
            conn.requests += 1
            conn.head_since = None
            try:
                return await handler(request)
            finally:
                conn.requests -= 1

        return tracked

    def opened(self, conn: GuardedConnection) -> bytes | None:
        """Count a new connection; the reply refusing it if its address holds its share."""
        assert conn.transport is not None
        limit = self.settings.max_connections_per_address
        held = self.per_address.get(conn.address, 0)
        if limit and held >= limit and not self.proxies.trusts_peer(conn.peer):
            self.refused_connections += 1
            log.info("client %s holds %d connections: one more refused "
                     "(--max-connections-per-address)", conn.address, held)
            return self.per_address_reply
        self.per_address[conn.address] = held + 1
        self.connections[conn.transport] = conn
        self._start_sweeper()
        return None

    def closed(self, conn: GuardedConnection) -> None:
        if conn.transport is not None and conn.transport in self.connections:
            del self.connections[conn.transport]
            left = self.per_address.get(conn.address, 1) - 1
            if left > 0:
                self.per_address[conn.address] = left
            else:
                del self.per_address[conn.address]

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
        if request.method != "PUT":
            return None
        retry = {"Retry-After": str(RETRY_AFTER_UPLOADS)}
        client, per_client = client_of(request, self.proxies), self.settings.max_uploads_per_client
        if client and per_client and self.uploads_by_client.get(client, 0) >= per_client:
            whose = "this address" if client.startswith("address ") else client
            return plain(429, f"too many uploads in progress for {whose} "
                         f"(--max-uploads-per-client {per_client}): retry later", retry)
        if self.uploads >= self.settings.max_uploads:
            return plain(503, f"too many uploads in progress (--max-uploads "
                         f"{self.settings.max_uploads}): retry later", retry)
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = self.refusal(request)
        if refused is not None:
            if request.body_exists:
                refused.force_close()  # the body will not be read
            return refused
        max_bytes, flag = self.body_limit(request.method)
        upload = request.method == "PUT"
        # Only uploads are counted per client: a GET does not need to know whose it is.
        client = (client_of(request, self.proxies) or "?") if upload else "?"
        conn = self.connections.get(request.transport) if request.transport else None
        watch = None
        if conn is not None and request.body_exists:
            watch = conn.watch = BodyWatch(
                request.content, max_bytes, flag,
                waiting=lambda: bool(request.get(CONTINUE_PENDING)))
            watch.restart_window(self.now())
            if watch.exceeded():  # bytes that came with the head are already counted
                watch.trip(self.too_large(watch), self.now())
        self.uploads += upload
        if upload:
            self.uploads_by_client[client] = self.uploads_by_client.get(client, 0) + 1
        self.in_flight += 1
        try:
            response = await handler(request)
        finally:
            self.uploads -= upload
            if upload:
                left = self.uploads_by_client[client] - 1
                if left > 0:
                    self.uploads_by_client[client] = left
                else:
                    del self.uploads_by_client[client]
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
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_while_open())

    async def _sweep_while_open(self) -> None:
        s = self.settings
        tick = max(0.05, min(1.0, min(s.client_timeout, s.header_timeout,
                                      s.upload_rate_grace) / 4))
        while self.connections:
            await asyncio.sleep(tick)
            self.sweep(self.now())

    def sweep(self, now: float) -> None:
        """Close connections whose request head is late; stop bodies whose client went
        silent or too slow; close connections that stay stuck."""
        timeout = self.settings.client_timeout
        for conn in list(self.connections.values()):
            watch, transport = conn.watch, conn.transport
            if transport is None:
                continue
            if conn.requests == 0 and conn.head_since is not None:
                self._check_head(conn, transport, now)
            if watch is None or watch.content.is_eof():
                continue
            if watch.tripped_at is not None:
                if now - watch.tripped_at > timeout:  # the handler never answered
                    transport.close()
                continue
            if not transport.is_reading() or watch.waiting():  # our doing, not the client's
                conn.last_rx = now
                watch.restart_window(now)
            elif now - conn.last_rx > timeout:
                log.info("client %s sent nothing for %.0f s: request body abandoned",
                         conn.address, timeout)
                watch.trip(ClientTooSlow(text=f"no data for {timeout:g} s: request body "
                                         "abandoned (--client-timeout)\n"), now)
            else:
                self._check_rate(conn, watch, now)

    def _check_head(self, conn: GuardedConnection, transport: asyncio.Transport,
                    now: float) -> None:
        assert conn.head_since is not None
        limit = self.settings.header_timeout
        if now - conn.head_since <= limit or transport.get_write_buffer_size():
            return  # in time, or our previous answer is still being written
        log.info("client %s sent no complete request head in %g s: connection closed",
                 conn.address, limit)
        transport.write(canned_reply(
            "408 Request Timeout", f"no complete request head within {limit:g} s "
            "(--header-timeout)"))
        transport.close()
        conn.head_since = None

    def _check_rate(self, conn: GuardedConnection, watch: BodyWatch, now: float) -> None:
        rate, window = self.settings.min_upload_rate, self.settings.upload_rate_grace
        got = watch.too_slow(now, rate, window)
        if got is None:
            return
        log.info("client %s sent its request body at %.0f bytes/s: cut (--min-upload-rate)",
                 conn.address, got)
        watch.trip(ClientTooSlow(text=f"request body arrived at {got:.0f} bytes/s over "
                                 f"{window:g} s, under the minimum of {rate} bytes/s "
                                 "(--min-upload-rate): nothing was written\n"), now)

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

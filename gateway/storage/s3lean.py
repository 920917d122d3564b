"""The hot path's requests written straight onto a pooled connection of botocore's aiohttp
session, and their small answers read without aiohttp's client machinery.

Profiles of 4 KiB GETs put about a third of the gateway's CPU in aiohttp's client: the URL
and headers taken apart and rebuilt, cookies filtered, a request object and a writer made
for a bodiless request whose bytes are known in full; then for the answer a parser feeding
a stream reader, a read timer moved at every piece, a response object and the release of
the connection through the stream's end. ``LeanSender`` writes the request bytes itself
and reads the answer's head itself (``_Answer``, installed as the connection's protocol
for the exchange): an answer with a small body (a HEAD's, an error's, a small object's,
up to ``SMALL_BODY``) is read whole and the connection goes straight back to the pool.
Anything else (a longer or chunked body, a 1xx) is handed back with the bytes received so
far to aiohttp's own protocol and parser, as a ``ClientResponse``: big bodies stream as
they did (``s3stream``).

The connection always comes from the session's connector: one pool, so
``--max-connections`` still bounds both paths, with its TLS context, keep-alive and connect
timeout. Like aiohttp, a request whose pooled connection turns out closed by the store is
sent once more on a fresh one.

It stands aside (``create`` answers None) for a proxy, a session with anything per request
(trace configs, middlewares, default headers, a total timeout, raise_for_status) or an
aiohttp without the members it uses: ``ClientSession.request`` then sends as before.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import aiohttp
from aiohttp.client_reqrep import ClientRequest, ClientResponse, RequestInfo
from aiohttp.helpers import TimerNoop
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

USER_AGENT = "bucketdav"
SMALL_BODY = 64 * 1024  # an answer's body up to this is read whole, without aiohttp
MAX_HEAD = 64 * 1024  # an answer head longer than this is a broken store


class Response(Protocol):
    """What the hot path reads of an answer: aiohttp's ``ClientResponse`` or ``Small``."""

    status: int

    @property
    def headers(self) -> CIMultiDictProxy[str]: ...

    async def read(self) -> bytes: ...

    def release(self) -> Any: ...

    def close(self) -> None: ...


class Small:
    """An answer read whole: its status, headers and body; its connection is back in the
    pool already."""

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def read(self) -> bytes:
        return self.body

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass

    def stream(self) -> WholeBody:
        return WholeBody(self.body)


class WholeBody:
    """A body already in memory, read as ``s3stream.Body`` is: ``read(n)``, ``aclose()``."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    async def read(self, n: int) -> bytes:
        data, at = self._data, self._at
        if at == 0 and n >= len(data):
            self._at = len(data)
            return data  # the whole of it: no copy
        piece = data[at:at + n]
        self._at = at + len(piece)
        return piece

    async def aclose(self) -> None:
        self._at = len(self._data)


def parse_head(head: bytes) -> tuple[int, CIMultiDict[str], bool]:
    """An answer head (without its blank line): status, headers, and whether the
    connection may be used again. Raises ValueError on anything malformed."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise ValueError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    status = int(rest[:3])
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ValueError(f"a broken header line in an answer: {line[:80]!r}")
        headers.add(name, value.strip(" \t"))
    connection = headers.get("Connection", "").lower()
    reusable = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
    return status, headers, reusable


class _Sent:
    """What a response asks of the request's writer when the request is already out."""

    output_size = 0


_SENT: Any = _Sent()
_TIMER = TimerNoop()


def request_head(method: str, target: str, headers: dict[str, str]) -> bytes:
    """The bytes of a bodiless HTTP/1.1 request. A name or value that would break the
    head (a CR or LF, say from an ETag a hostile store sent) is refused, not sent."""
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
    lines.append("\r\n")
    head = "".join(lines)
    if head.count("\n") != len(lines) or head.count("\r") != len(lines):
        raise ValueError(f"a header of {method} {target} holds a line break")
    return head.encode("latin-1")


class _Answer(asyncio.Protocol):
    """The connection's protocol while an answer's head, and a small body, arrive; then
    aiohttp's again (``inner``)."""

    def __init__(self, sender: LeanSender, connection: Any, method: str) -> None:
        self._sender = sender
        self._connection = connection
        self._inner = connection.protocol
        self._transport = connection.transport
        self._bodiless = method == "HEAD"
        self._buf = bytearray()
        self._need = -1  # the bytes of the whole small answer, once its head is read
        self._parsed: tuple[int, CIMultiDict[str], bool, int] | None = None
        self.done: asyncio.Future[Small | None] = sender.loop.create_future()
        timeout = sender.read_timeout
        self._timer = (sender.loop.call_later(timeout, self._timed_out) if timeout else None)

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        buf = self._buf
        buf += data
        if self._parsed is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._fail(aiohttp.ClientPayloadError("the store's answer head is too long"))
                return
            try:
                status, headers, reusable = parse_head(bytes(buf[:end]))
            except ValueError as exc:
                self._fail(aiohttp.ClientPayloadError(str(exc)))
                return
            length = headers.get("Content-Length", "")
            if self._bodiless or status in (204, 304):
                size = 0
            elif headers.get("Content-Range", "").endswith("/0"):
                # A range of an empty object: some stores (s3rver) announce one byte and
                # send none. Nothing is read; the connection is not used again.
                size, reusable = 0, False
            elif (status < 200 or "Transfer-Encoding" in headers or not length.isdigit()
                  or int(length) > SMALL_BODY):
                self._hand_back()
                return
            else:
                size = int(length)
            self._parsed = (status, headers, reusable, end + 4)
            self._need = end + 4 + size
        if len(buf) < self._need:
            return
        assert self._parsed is not None
        status, headers, reusable, start = self._parsed
        body = bytes(buf[start:self._need])
        self._restore()
        if reusable and len(buf) == self._need:
            self._connection.release()
        else:
            self._connection.close()  # the store closes it, or sent more than it said
        self.done.set_result(Small(status, CIMultiDictProxy(headers), body))

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.done.done():
            self._restore()
            self._inner.connection_lost(exc)  # aiohttp's protocol knows it is gone
            self._connection.close()
            error = (aiohttp.ServerDisconnectedError() if exc is None
                     else aiohttp.ClientOSError(*exc.args))
            self.done.set_exception(error)

    def abandon(self) -> None:
        """The caller is gone (cancelled): the answer will not be read."""
        if not self.done.done():
            self.done.cancel()
        if self._transport.get_protocol() is self:
            self._restore()
            self._connection.close()

    def _hand_back(self) -> None:
        """Not a small answer: aiohttp's protocol reads it, from its first byte."""
        self._restore()
        self._sender.expect(self._inner, self._bodiless)
        self._inner.data_received(bytes(self._buf))
        self.done.set_result(None)

    def _restore(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._transport.set_protocol(self._inner)

    def _fail(self, error: BaseException) -> None:
        self._restore()
        self._connection.close()
        self.done.set_exception(error)

    def _timed_out(self) -> None:
        self._timer = None
        if not self.done.done():
            self._fail(aiohttp.SocketTimeoutError("Timeout on reading data from socket"))


class LeanSender:
    def __init__(self, session: aiohttp.ClientSession, base: URL) -> None:
        connector = session.connector
        if connector is None:
            raise TypeError("the session has no connector")
        self._session = session
        self._connector = connector
        self._timeout = session.timeout
        self.loop = asyncio.get_running_loop()
        self.read_timeout = self._timeout.sock_read
        # Only its connection key and address are read by ``connect``: one serves all.
        self._template = ClientRequest("GET", base, loop=self.loop, session=session)
        self._params: dict[str, Any] = {
            "auto_decompress": False,
            "read_until_eof": False,
            "read_timeout": self.read_timeout,
            "read_bufsize": session._read_bufsize,
            "timeout_ceil_threshold": connector._timeout_ceil_threshold,
            "max_line_size": session._max_line_size,
            "max_field_size": session._max_field_size,
            "max_headers": session._max_headers,
        }

    @classmethod
    def create(cls, session: aiohttp.ClientSession, base: str,
               proxy: str | None) -> LeanSender | None:
        """A sender for ``session``'s requests to ``base``; None where it must stand aside."""
        try:
            if (proxy or session.trace_configs or session._middlewares
                    or session.headers or session.timeout.total
                    or session._raise_for_status or session.auto_decompress):
                return None
            return cls(session, URL(base, encoded=True))
        except (AttributeError, TypeError, ValueError):
            return None

    def expect(self, protocol: Any, bodiless: bool) -> None:
        """Make aiohttp's protocol ready to read an answer."""
        protocol.set_response_params(skip_payload=bodiless, **self._params)

    async def send(self, method: str, url: URL, headers: dict[str, str]) -> Response:
        """Send a bodiless request; returns a ``Small`` answer read whole, or aiohttp's
        response once its head is in (as ``session.request`` does), its body still to
        read."""
        headers.setdefault("User-Agent", USER_AGENT)
        head = request_head(method, url.raw_path_qs, headers)
        for attempt in (1, 2):
            connection = await self._connector.connect(self._template, [], self._timeout)
            try:
                return await self._exchange(connection, method, url, head, headers)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                if attempt == 2:  # a fresh connection failed too: not a stale one
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, connection: Any, method: str, url: URL, head: bytes,
                        headers: dict[str, str]) -> Response:
        transport = connection.transport
        if connection.protocol is None or transport is None or transport.is_closing():
            connection.close()
            raise aiohttp.ServerDisconnectedError()
        answer = _Answer(self, connection, method)
        transport.set_protocol(answer)
        transport.write(head)
        try:
            small = await answer.done
        except BaseException:
            answer.abandon()
            raise
        if small is not None:
            return small
        response = ClientResponse(
            method, url, writer=None, continue100=None, timer=_TIMER,
            request_info=RequestInfo(url, method, CIMultiDictProxy(CIMultiDict(headers)), url),
            traces=[], loop=self.loop, session=self._session, stream_writer=_SENT)
        try:
            await response.start(connection)
        except BaseException:
            response.close()
            connection.close()
            raise
        return response

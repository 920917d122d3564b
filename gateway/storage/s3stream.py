"""The body of a hot-path GET, read with as little CPU per byte as the connection allows.

Profiles of a 1 GiB sequential read put most of the gateway's CPU in moving the body:
aiohttp hands it over in the network's pieces (often 64 KiB), each one copied twice on the
way (uvloop's read buffer into bytes, the HTTP parser's slice of those into more bytes) and
each one costing a trip through the parser, the stream reader and a task wake-up. On a
plain (not TLS) connection whose body is framed by Content-Length, ``Body`` therefore takes
the rest of the body itself once aiohttp has parsed the head: the transport is given a
buffered protocol (``_Direct``) that has the socket read straight into the piece handed on
(a whole read, e.g. 256 KiB: no copy in user space at all, and one wake-up of the reader
per piece). When the body is done, the transport goes back to aiohttp's protocol and the
response ends as if aiohttp had read it (the connection goes back to the pool); a body
left unfinished closes its connection, as before. Anything else (TLS, chunked, encoded,
an aiohttp whose internals differ) is read through aiohttp as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections import deque
from typing import Any

import aiohttp


class Body:
    """A GET's streaming body, as S3Store reads botocore's: ``read(n)`` and ``aclose()``."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._rest = memoryview(b"")  # what the last piece held beyond its ``n``
        self._direct: _Direct | None = None  # the body taken from aiohttp, if it is
        self._decided = False

    async def read(self, n: int) -> bytes:
        """At most ``n`` bytes; empty at the end. Everything after this (splitting into
        blocks, waking readers, writing to clients) costs per piece, so pieces are whole
        reads of ``n`` whose edges fall at multiples of ``n`` from the body's start (so
        on the blocks' edges). Only the first may be shorter: what has arrived, at once."""
        if not self._decided:
            self._decided = True
            self._direct, first = _Direct.take(self._response, n)
            self._rest = memoryview(first)  # what aiohttp had, when it keeps the body
        direct = self._direct
        if direct is not None and not self._rest:
            data = await direct.read()
            if len(data) <= n:
                return data
            self._rest = memoryview(data)  # asked for less than a piece: cut below
        parts: list[memoryview] = []
        got = 0
        while got < n:
            rest = self._rest
            if not rest:
                direct = self._direct
                data = await (direct.read() if direct is not None else self._piece())
                if not data:
                    break
                if not parts and len(data) == n:
                    return data  # exactly one whole piece: no copy at all
                rest = memoryview(data)
            take = n - got
            parts.append(rest[:take])
            self._rest = rest[take:]
            got += min(take, len(rest))
        return b"".join(parts)

    async def _piece(self) -> bytes:
        """aiohttp's next piece as received (empty at the end of the body): taken whole
        and cut here by reference, where aiohttp's ``read(n)`` copies what it cuts."""
        content = self._response.content
        while True:
            data, end_of_http_chunk = await content.readchunk()
            if data or not end_of_http_chunk:
                return data

    async def aclose(self) -> None:
        self._rest = memoryview(b"")
        direct, self._direct = self._direct, None
        self._decided = True
        response = self._response
        if direct is not None and not direct.done:
            direct.give_back()
            response.close()  # cut short: the connection is mid-body
        elif response.content.is_eof():
            response.release()  # read to its end: the connection goes back to the pool
        else:
            response.close()  # cut short: the rest of the body is not worth reading


_QUEUED = 4  # pieces received and not yet read before the socket is left unread
_FIRST = 64 * 1024  # the first piece when aiohttp had none of the body yet


class _Direct:
    """The rest of a Content-Length body, read from a duplicate of the connection's
    socket while aiohttp's transport is paused. ``SO_RCVLOWAT`` is the piece still
    wanted, so the loop calls ``_readable`` only once the kernel holds all of it; the
    piece is then one ``recv``, straight into the bytes handed on. Pieces keep their edges
    at multiples of ``size`` from the body's start."""

    def __init__(self, response: aiohttp.ClientResponse, protocol: Any, sock: socket.socket,
                 left: int, size: int, first: bytes, timeout: float | None) -> None:
        self._response = response
        self._protocol = protocol  # aiohttp's: paused until the body is done
        self._sock = sock
        self.left = left  # body bytes still to come from the socket
        self.done = False  # the socket is aiohttp's again
        self._size = size
        self._timeout = timeout
        self._ready: deque[bytes] = deque()
        self._parts: list[bytes] = []  # the piece being received
        self._filled = len(first)
        if first:
            self._ready.append(first)  # what aiohttp had: the first piece, at once
        # The first piece from the socket is short when aiohttp had nothing (the first
        # bytes go on early); every other one ends on a multiple of ``size``.
        self._end = self._next_end() if first else min(self._next_end(), _FIRST)
        self._lowat = 0
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False  # the connection ended (early)
        self._error: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        self._watching = False

    @classmethod
    def take(cls, response: aiohttp.ClientResponse, size: int) -> tuple[_Direct | None, bytes]:
        """Take the body over from aiohttp; or None when it must stay with aiohttp, with
        the bytes taken out of it to find that out (read them first)."""
        connection = response.connection
        length = response.content_length
        content = response.content
        if (connection is None or length is None or connection.transport is None
                or response.headers.get("Content-Encoding", "identity") != "identity"
                or response.headers.get("Transfer-Encoding") or size <= 0):
            return None, b""
        transport: Any = connection.transport
        protocol: Any = connection.protocol
        raw = transport.get_extra_info("socket")
        if (raw is None or transport.get_extra_info("sslcontext") is not None
                or content.is_eof()):
            return None, b""
        # Everything aiohttp holds: reading it lets a parser paused on a full buffer
        # go on with the bytes it held back, until nothing is left anywhere.
        held = []
        while chunk := content.read_nowait(-1):
            held.append(chunk)
        first = b"".join(held)
        left = length - content.total_bytes
        if left <= 0 or not _between_reads(protocol, content):
            return None, first  # all of it is in aiohttp's hands already, or unsure
        try:
            sock = socket.socket(fileno=os.dup(raw.fileno()))
        except OSError:
            return None, first
        sock.setblocking(False)
        protocol.pause_reading()  # from here on, the body's bytes are ours
        direct = cls(response, protocol, sock, left, size, first, protocol._read_timeout)
        direct._watch()
        return direct, b""

    # ---- the loop's side ------------------------------------------------------------
    def _readable(self) -> None:
        """The kernel holds the rest of the piece (or the connection ended)."""
        want = self._end - self._filled
        try:
            data = self._sock.recv(want)
        except (BlockingIOError, InterruptedError):
            return  # woken for nothing: wait on
        except OSError as exc:
            self._stop(aiohttp.ClientPayloadError(f"reading the body failed: {exc!r}"))
            return
        if not data:
            self._stop()
            return
        self._parts.append(data)
        self._filled += len(data)
        self.left -= len(data)
        if self._filled == self._end:
            parts, self._parts = self._parts, []
            self._ready.append(parts[0] if len(parts) == 1 else b"".join(parts))
            self._end = self._next_end()
            if not self.left:
                self._finish()
            elif len(self._ready) >= _QUEUED:
                self._unwatch()  # the reader is behind: leave the bytes in the kernel
            else:
                self._low_water()
        else:
            self._low_water()
        self._wake()

    # ---- the reader's side ----------------------------------------------------------
    async def read(self) -> bytes:
        """The next piece; empty when the body is over (early, if it was cut)."""
        while not self._ready:
            if self._error is not None:
                raise self._error
            if self._ended or self.done:
                return b""
            self._waiter = self._loop.create_future()
            try:
                if self._timeout is None:
                    await self._waiter
                else:
                    async with asyncio.timeout(self._timeout):
                        await self._waiter
            except TimeoutError:
                raise aiohttp.SocketTimeoutError(
                    "Timeout on reading data from socket") from None
            finally:
                self._waiter = None
        data = self._ready.popleft()
        if not self._watching and not self.done and not self._ended:
            self._watch()
        return data

    def give_back(self) -> None:
        """Stop reading (the body was not read to its end: the caller closes it)."""
        if not self.done:
            self.done = True
            self._release()

    # ---- internals ------------------------------------------------------------------
    def _next_end(self) -> int:
        """Where the next piece ends: the next multiple of ``size``, or the body's end."""
        return min((self._filled // self._size + 1) * self._size, self._filled + self.left)

    def _low_water(self) -> None:
        want = self._end - self._filled
        if want != self._lowat:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, want)
            self._lowat = want

    def _watch(self) -> None:
        self._low_water()
        self._loop.add_reader(self._sock.fileno(), self._readable)
        self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._watching = False
            self._loop.remove_reader(self._sock.fileno())

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _release(self) -> None:
        """Give the socket back as it was: the low-water mark is the socket's, not the
        duplicate's, and a pooled connection left with it would not see a short answer."""
        self._unwatch()
        if self._lowat:
            with contextlib.suppress(OSError):  # gone already: nothing to give back
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
            self._lowat = 0
        self._sock.close()  # the duplicate only: the connection is aiohttp's

    def _stop(self, error: BaseException | None = None) -> None:
        """The connection ended or failed before the body did: what arrived is still
        served (the reader then finds the body short), an error is raised after it."""
        if self._parts:
            self._ready.append(b"".join(self._parts))
            self._parts = []
        self._ended = True
        self._error = error
        self._release()
        self._response.close()
        self._wake()

    def _finish(self) -> None:
        """The whole body is here: aiohttp's response ends as if it had read it, so the
        connection goes back to the pool (its parser is replaced on the next request)."""
        self.done = True
        self._release()
        protocol = self._protocol
        protocol._payload = None  # the message is over for the protocol
        protocol.resume_reading()  # the transport reads for aiohttp again
        self._response.content.feed_eof()  # ends the response: releases the connection


def _between_reads(protocol: Any, content: aiohttp.StreamReader) -> bool:
    """Whether every byte aiohttp has taken off the socket is in ``content``: its
    protocol is this response's, not paused (a paused parser may hold bytes back) and
    holds nothing unparsed. Anything unexpected (another aiohttp) says no."""
    try:
        return bool(protocol._payload is content and not protocol._reading_paused
                    and not protocol._buffer_paused and not protocol._tail
                    and protocol._payload_parser is None and not content.is_eof()
                    and content.exception() is None
                    and isinstance(protocol._read_timeout, float | int | None))
    except AttributeError:
        return False

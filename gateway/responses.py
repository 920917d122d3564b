"""aiohttp response helpers shared by both front-ends (a leaf, like errors and settings)."""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache
from typing import TypeVar

from aiohttp import web

from gateway.errors import GatewayError
from gateway.storage.base import ObjectInfo

log = logging.getLogger("bucketdav")

T = TypeVar("T")

# Set by the app's Expect handler on a PUT that asked for ``100 Continue``: the PUT handler
# says it only once every check has passed, so a refused upload is never sent at all.
CONTINUE_PENDING = web.RequestKey("bucketdav.continue_pending", bool)


async def send_continue(request: web.Request) -> None:
    """Send the ``100 Continue`` a deferred ``Expect`` is waiting for (once)."""
    if request.get(CONTINUE_PENDING):
        request[CONTINUE_PENDING] = False
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the response proper has not started


# What a served object may do in a browser: nothing. Any writer can upload a page or an
# SVG whose script would otherwise run in the gateway's origin with the credentials of
# whoever opens it. ``sandbox`` without allow-scripts runs no script (nor forms, popups,
# plugins); allow-same-origin only lets Chromium's media document load its own source
# (under a bare sandbox a video or sound opened directly never loads), and without
# scripts nothing can use that origin. Images, media and inline styles still display.
OBJECT_POLICY = (
    "sandbox allow-same-origin; default-src 'none'; img-src 'self' data:; "
    "media-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)


def object_headers(trusted_html: bool = False) -> dict[str, str]:
    """The headers of every object response: ``nosniff`` always (a body is only ever
    what its Content-Type says), the inert policy unless the share trusts its HTML."""
    headers = {"X-Content-Type-Options": "nosniff"}
    if not trusted_html:
        headers["Content-Security-Policy"] = OBJECT_POLICY
    return headers


def plain(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """A short text body naming the problem: what every refusal looks like."""
    return web.Response(
        status=status,
        text=message.rstrip("\n") + "\n",
        content_type="text/plain",
        charset="utf-8",
        headers=headers,
    )


def content_type_of(stored: str | None, name: str) -> str:
    """What a GET says: the stored Content-Type, else one guessed from the name. S3 stores
    ``binary/octet-stream`` when a writer sent none, so that counts as none."""
    if stored and stored != "binary/octet-stream":
        return stored
    return guess_type(name) or "application/octet-stream"


def guess_type(name: str) -> str | None:
    """The type the name's last suffix says, or None. The last suffix only: the bytes of
    ``a.tar.gz`` are gzip, and no Content-Encoding is sent that would make them a tar."""
    dot = name.rfind(".")
    return _guess_suffix(name[dot:].lower() if dot > 0 else "")


@lru_cache(maxsize=1024)
def _guess_suffix(suffix: str) -> str | None:
    # Per suffix, not per name: this runs on every GET and PROPFIND entry.
    guessed, _ = mimetypes.guess_type("x" + suffix, strict=False)
    return guessed


async def send_streamed(
    request: web.Request, resp: web.StreamResponse, body: AsyncGenerator[bytes, None] | None
) -> web.StreamResponse:
    """Send ``resp``, then ``body`` (None: headers only, as for HEAD or an empty object).

    The first chunk is pulled before the status goes out, so a source that fails at once
    (a stale cached ETag, a store error) is still answered with a status. Once the status
    is sent, a failure can only be reported by cutting the connection: a clean end with
    missing bytes would look complete. The source is closed on every path, at once, so
    what it holds (a store response, pinned blocks) is given back.
    """
    if body is None:
        await resp.prepare(request)
        await resp.write_eof()
        return resp
    try:
        first = await anext(body, None)
        if first is not None and len(first) == resp.content_length:
            # The whole body in hand (a small object): head and body leave in one write,
            # one packet for the client to take in, not two.
            resp._send_headers_immediately = False
        await resp.prepare(request)
        try:
            if first is not None:
                await resp.write(first)
                # No chunk is held while the next is awaited: its bytes may be a cached
                # block whose reservation the source ends, and the next may wait for
                # memory (a reference kept by many readers at once is memory nothing counts).
                del first
                async for chunk in body:
                    if request.transport is None or request.transport.is_closing():
                        return cut(request, resp, CLIENT_GONE)  # before counting more
                    await resp.write(chunk)
                    del chunk
        except ConnectionError:
            return cut(request, resp, CLIENT_GONE)
        except GatewayError as exc:
            return cut(request, resp, exc.message)  # e.g. the object was replaced
        except Exception:
            log.exception("aborting a response mid-body after an unexpected error")
            return cut(request, resp, "internal error")
    finally:
        await body.aclose()
    await resp.write_eof()
    return resp


async def batches(items: AsyncIterator[T], size: int) -> AsyncIterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), for rendering a streamed
    listing a batch at a time."""
    batch: list[T] = []
    async for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


CLIENT_GONE = "client gone"


@dataclass(frozen=True, slots=True)
class Cut:
    """Why a response was cut after its status was sent, and how far it got."""

    reason: str
    sent: int  # bytes handed to the connection, head included


CUT = web.RequestKey("bucketdav.cut", Cut)


def cut(request: web.Request, resp: web.StreamResponse, reason: str) -> web.StreamResponse:
    """End ``resp`` by closing its connection: the client sees a short body, never a clean
    end. The response is returned, not raised: a cut read is an expected event (clients
    that seek hang up mid-body all the time, objects get replaced), so aiohttp finishes
    it like any other, and it gets its one access-log line (the reason in it) and its
    count in the metrics, where raising made a traceback and neither."""
    request[CUT] = Cut(reason, request.writer.output_size)
    resp.force_close()
    request.protocol.force_close()
    return resp


@lru_cache(maxsize=4096)
def http_date(moment: datetime) -> str:
    """RFC 9110 IMF-fixdate; cached because listings repeat a few timestamps many times."""
    return format_datetime(moment, usegmt=True)


def rfc3339(when: datetime | None) -> str | None:
    """``2024-05-01T12:00:00Z``: WebDAV's creationdate and the JSON listing's dates."""
    if when is None:
        return None
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validators(info: ObjectInfo) -> dict[str, str]:
    """ETag and Last-Modified, identical in GET, HEAD, PUT and PROPFIND answers."""
    return {"ETag": info.etag, "Last-Modified": http_date(info.last_modified)}

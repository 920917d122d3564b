"""GET and HEAD of objects: whole, single range, multipart/byteranges, conditionals.

A plain GET costs one store request: the GET that streams the body also brings the
metadata. Only requests that must decide before sending (conditionals, ranges, HEAD)
look at metadata first, through the engine's cache.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.engine import OpenRead
from gateway.errors import GatewayError, NotFound, ObjectChanged, PreconditionFailed
from gateway.fs.paths import DavPath
from gateway.fs.preconditions import Outcome, evaluate, if_range_allows
from gateway.fs.share import Share
from gateway.http.ranges import (
    ByteRange,
    Unsatisfiable,
    closing,
    multipart_length,
    parse_range,
    part_header,
)
from gateway.responses import content_type_of, plain, validators
from gateway.storage.base import ObjectInfo

log = logging.getLogger("bucketdav.http")

_DECIDING_HEADERS = ("Range", "If-Match", "If-None-Match", "If-Modified-Since",
                     "If-Unmodified-Since")


async def _start(chunks: AsyncIterator[bytes]) -> bytes | None:
    """Pull the first chunk before the status is sent: a read that fails to start (a stale
    cached ETag, a store error) can still be answered with a status."""
    try:
        return await anext(chunks, None)
    except BaseException:
        await _close(chunks)
        raise


async def _close(chunks: AsyncIterator[bytes]) -> None:
    """Close an async generator now, so the store's response is released at once."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


async def _stream(
    resp: web.StreamResponse, chunks: AsyncIterator[bytes], first: bytes | None = None
) -> None:
    """Write a body. Once the status is sent, a failure can only be reported by cutting
    the connection: a clean end with missing bytes would look like success."""
    try:
        if first is not None:
            await resp.write(first)
        async for chunk in chunks:
            await resp.write(chunk)
    except GatewayError as exc:
        log.warning("aborting a response mid-body: %s", exc.message)
        resp.force_close()
        raise ConnectionResetError(exc.message) from exc
    finally:
        await _close(chunks)


async def get_object(
    request: web.Request, share: Share, path: DavPath, max_ranges: int
) -> web.StreamResponse:
    """Serve the object at ``path``; raises NotFound when there is no such object."""
    key = share.key(path)
    head = request.method == "HEAD"
    deciding = head or any(h in request.headers for h in _DECIDING_HEADERS)
    for attempt in (1, 2):
        if deciding:
            info = await share.view.stat(key)
            read: OpenRead | None = None
        else:
            read = await share.view.open(key)
            info = read.info
        try:
            return await _respond(request, share, path, read, info, head, max_ranges)
        except ObjectChanged:
            # Raised only before the status went out: the cached metadata was stale (the
            # object was replaced by someone else). Forget it and decide again, once.
            if attempt == 2:
                raise
            share.view.invalidate(key)
        finally:
            if read is not None:
                await read.aclose()
    raise AssertionError("unreachable")


async def _respond(
    request: web.Request,
    share: Share,
    path: DavPath,
    read: OpenRead | None,
    info: ObjectInfo,
    head: bool,
    max_ranges: int,
) -> web.StreamResponse:
    outcome = evaluate(request.headers, info, safe_method=True)
    headers = validators(info)
    headers["Accept-Ranges"] = "bytes"
    if outcome is Outcome.NOT_MODIFIED:
        return web.Response(status=304, headers=headers)
    if outcome is Outcome.FAILED:
        raise PreconditionFailed("precondition failed: the object's ETag or date differs")
    content_type = content_type_of(info, path.name)
    ranges: list[ByteRange] | None = None
    if "Range" in request.headers and if_range_allows(request.headers.get("If-Range"), info):
        try:
            ranges = parse_range(request.headers["Range"], info.size, max_ranges)
        except Unsatisfiable:
            headers["Content-Range"] = f"bytes */{info.size}"
            return plain(416, f"range not satisfiable: the object has {info.size} bytes", headers)
    if ranges is None:
        resp = web.StreamResponse(status=200, headers=headers)
        resp.content_type = content_type
        resp.content_length = info.size
        if head or not info.size:
            await resp.prepare(request)
        else:
            reader = read or await share.view.open(info.key, info)
            chunks = reader.iter_range(0, info.size)
            first = await _start(chunks)
            await resp.prepare(request)
            await _stream(resp, chunks, first)
        await resp.write_eof()
        return resp
    reader = read or await share.view.open(info.key, info)
    if len(ranges) == 1:
        r = ranges[0]
        headers["Content-Range"] = r.content_range(info.size)
        resp = web.StreamResponse(status=206, headers=headers)
        resp.content_type = content_type
        resp.content_length = r.length
        if head:
            await resp.prepare(request)
        else:
            chunks = reader.iter_range(r.start, r.end)
            first = await _start(chunks)
            await resp.prepare(request)
            await _stream(resp, chunks, first)
        await resp.write_eof()
        return resp
    boundary = secrets.token_hex(16)
    resp = web.StreamResponse(status=206, headers=headers)
    resp.headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
    resp.content_length = multipart_length(boundary, content_type, ranges, info.size)
    if head:
        await resp.prepare(request)
    else:
        for i, r in enumerate(ranges):
            chunks = reader.iter_range(r.start, r.end)
            first = None
            if i == 0:
                first = await _start(chunks)
                await resp.prepare(request)
            await resp.write(part_header(boundary, content_type, r, info.size, i == 0))
            await _stream(resp, chunks, first)
        await resp.write(closing(boundary))
    await resp.write_eof()
    return resp


async def get_path(
    request: web.Request, share: Share, path: DavPath, max_ranges: int
) -> web.StreamResponse:
    """GET/HEAD on any path: object, directory redirect, or 404."""
    if share.is_noise(path):  # client noise: the share's noise area, never the store
        held = share.noise_file(path)
        if held is None or held.data is None:
            raise NotFound(f"{share.href(path)} does not exist")
        headers = {**validators(held.info), "Content-Type": content_type_of(held.info, path.name)}
        return web.Response(body=held.data, headers=headers)
    try:
        return await get_object(request, share, path, max_ranges)
    except NotFound:
        if await share.is_dir(path):
            location = share.href(path, is_dir=True)
            if request.query_string:
                location += "?" + request.query_string
            return plain(301, f"moved to {location}", {"Location": location})
        raise NotFound(f"{share.href(path)} does not exist") from None

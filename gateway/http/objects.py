"""GET and HEAD of objects: whole, single range, multipart/byteranges, conditionals.

A plain GET costs one store request: the GET that streams the body also brings the
metadata. Only requests that must decide before sending (conditionals, ranges, HEAD)
look at metadata first, through the engine's cache.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator
from types import TracebackType
from urllib.parse import quote

from aiohttp import web

from gateway.engine import OpenRead
from gateway.engine.digests import repr_digest, wanted
from gateway.errors import NotFound, ObjectChanged, PreconditionFailed
from gateway.fs.paths import DavPath, split_target
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
from gateway.http.versions import serve_versions, version_asked
from gateway.responses import (
    content_type_of,
    object_headers,
    plain,
    send_streamed,
    validators,
)
from gateway.storage.base import ObjectInfo

# The most ranges one request may ask for (--max-ranges), set by the app.
MAX_RANGES = web.AppKey("max_ranges", int)

# Want-Repr-Digest too: the store's checksums come with a HEAD, not with a ranged GET.
_DECIDING_HEADERS = ("Range", "If-Match", "If-None-Match", "If-Modified-Since",
                     "If-Unmodified-Since", "Want-Repr-Digest")


class _Source:
    """The one owner of a request's ``OpenRead``: opened when bytes are first needed (or
    at once, for a plain GET whose metadata comes with its body), closed on every path
    when the response is done."""

    def __init__(self, share: Share, version_id: str | None = None) -> None:
        self._share = share
        self._version_id = version_id  # ?versionId: every ranged GET names it
        self._read: OpenRead | None = None

    async def open(self, key: str, info: ObjectInfo | None = None) -> OpenRead:
        if self._read is None:
            if self._version_id is not None and info is not None:
                self._read = self._share.view.open_version(info, self._version_id)
            else:
                self._read = await self._share.view.open(key, info)
        return self._read

    async def __aenter__(self) -> _Source:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        read, self._read = self._read, None
        if read is not None:
            await read.aclose()


async def get_object(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    """Serve the object at ``path``; raises NotFound when there is no such object."""
    key = share.key(path)
    head = request.method == "HEAD"
    version_id = version_asked(request)
    deciding = head or version_id is not None or any(
        h in request.headers for h in _DECIDING_HEADERS)
    for attempt in (1, 2):
        try:
            async with _Source(share, version_id) as source:
                if version_id is not None:
                    info = await share.view.stat_version(key, version_id)
                elif deciding:
                    info = await share.view.stat(key)
                else:
                    info = (await source.open(key)).info
                return await _respond(request, share, path, source, info, head)
        except ObjectChanged:
            # Raised only before the status went out: the cached metadata was stale (the
            # object was replaced by someone else). Forget it and decide again, once.
            if attempt == 2:
                raise
            share.view.invalidate(key)
    raise AssertionError("unreachable")


async def _respond(
    request: web.Request, share: Share, path: DavPath, source: _Source, info: ObjectInfo,
    head: bool,
) -> web.StreamResponse:
    outcome = evaluate(request.headers, info, safe_method=True)
    headers = {**validators(info), **object_headers(share.policy.trusted_html)}
    headers["Accept-Ranges"] = "bytes"
    if outcome is Outcome.NOT_MODIFIED:
        return web.Response(status=304, headers=headers)
    if outcome is Outcome.FAILED:
        raise PreconditionFailed("precondition failed: the object's ETag or date differs")
    # The whole object's digest, in a 206 too (RFC 9530: of the representation).
    digest = repr_digest(info.digests, wanted(request.headers.get("Want-Repr-Digest")))
    if digest is not None:
        headers["Repr-Digest"] = digest
    content_type = content_type_of(info.content_type, path.name)
    ranges: list[ByteRange] | None = None
    if "Range" in request.headers and if_range_allows(request.headers.get("If-Range"), info):
        try:
            ranges = parse_range(request.headers["Range"], info.size, request.app[MAX_RANGES])
        except Unsatisfiable:
            headers["Content-Range"] = f"bytes */{info.size}"
            return plain(416, f"range not satisfiable: the object has {info.size} bytes", headers)
    if ranges is None:
        resp = web.StreamResponse(status=200, headers=headers)
        resp.content_type = content_type
        resp.content_length = info.size
        if head or not info.size:
            return await send_streamed(request, resp, None)
        reader = await source.open(info.key, info)
        return await send_streamed(request, resp, reader.iter_range(0, info.size))
    if len(ranges) == 1:
        r = ranges[0]
        headers["Content-Range"] = r.content_range(info.size)
        resp = web.StreamResponse(status=206, headers=headers)
        resp.content_type = content_type
        resp.content_length = r.length
        if head:
            return await send_streamed(request, resp, None)
        reader = await source.open(info.key, info)
        return await send_streamed(request, resp, reader.iter_range(r.start, r.end))
    boundary = secrets.token_hex(16)
    resp = web.StreamResponse(status=206, headers=headers)
    resp.headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
    resp.content_length = multipart_length(boundary, content_type, ranges, info.size)
    if head:
        return await send_streamed(request, resp, None)
    reader = await source.open(info.key, info)
    return await send_streamed(
        request, resp, _multipart(reader, boundary, content_type, ranges, info.size)
    )


async def _multipart(
    reader: OpenRead, boundary: str, content_type: str, ranges: list[ByteRange], size: int
) -> AsyncGenerator[bytes, None]:
    """The multipart/byteranges body. Each part's header goes out with its first bytes, so
    the status is sent only once the store has answered for the first range."""
    for i, r in enumerate(ranges):
        chunks = reader.iter_range(r.start, r.end)
        try:
            first = await anext(chunks, b"")
            yield part_header(boundary, content_type, r, size, i == 0) + first
            del first  # no bytes held past their block's reservation (send_streamed)
            async for chunk in chunks:
                yield chunk
                del chunk
        finally:
            await chunks.aclose()
    yield closing(boundary)


# Every visible ASCII byte: what may stand in a header as it is.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


def raw_query(request: web.Request) -> str:
    """The query exactly as the client sent it (still percent-encoded: decoding it would
    change its meaning, ``%23`` into a fragment, ``%0D%0A`` into a broken header); a byte
    a header cannot carry as it is gets percent-encoded."""
    return quote(split_target(request.raw_path)[1], safe=_HEADER_SAFE)


async def get_path(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    """GET/HEAD on any path: object, directory redirect, or 404."""
    if share.is_noise(path):  # client noise: the share's noise area, never the store
        held = await share.noise_file(path)
        if held is None or held.data is None:
            raise NotFound(f"{share.href(path)} does not exist")
        headers = {
            **validators(held.info),
            **object_headers(share.policy.trusted_html),
            "Content-Type": content_type_of(held.info.content_type, path.name),
        }
        return web.Response(body=held.data, headers=headers)
    try:
        if share.file_hidden(path):  # the share's filters: no such object
            raise NotFound(f"{share.href(path)} does not exist")
        if "versions" in request.query:
            return await serve_versions(request, share, path)
        return await get_object(request, share, path)
    except NotFound:
        if await share.is_dir(path):
            location = share.href(path, is_dir=True)
            query = raw_query(request)
            if query:
                location += "?" + query
            return plain(301, f"moved to {location}", {"Location": location})
        raise NotFound(f"{share.href(path)} does not exist") from None

"""The HTTP front-end: GET/HEAD of objects with ranges and conditionals, listings."""

from __future__ import annotations

from aiohttp import web

from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.http.listing import serve_listing
from gateway.http.objects import MAX_RANGES, get_path

__all__ = ["MAX_RANGES", "get"]


async def get(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    """GET and HEAD: a listing for a directory path (``/`` at the end), else the object."""
    if path.trailing_slash or path.is_root:
        return await serve_listing(request, share, path)
    return await get_path(request, share, path)

"""The WebDAV methods about resources rather than their bytes: OPTIONS, PROPFIND,
PROPPATCH, LOCK and UNLOCK. ``HANDLERS`` is merged with content.py's in ``__init__``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.webdav.lockmethods import lock, unlock
from gateway.webdav.propfind import propfind
from gateway.webdav.proppatch import proppatch

Handler = Callable[[web.Request, Share, DavPath], Awaitable[web.StreamResponse]]

ALLOW = (
    "OPTIONS, GET, HEAD, PROPFIND, PROPPATCH, MKCOL, PUT, DELETE, COPY, MOVE, LOCK, UNLOCK"
)


async def options(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    """The same answer on every path, existing or not: Finder and Windows decide at mount
    time from ``DAV: 1, 2`` whether they may write (class 2: locks). No store call."""
    return web.Response(
        status=200,
        headers={"DAV": "1, 2", "MS-Author-Via": "DAV", "Allow": ALLOW, "Content-Length": "0"},
    )


HANDLERS: dict[str, Handler] = {
    "OPTIONS": options,
    "PROPFIND": propfind,
    "PROPPATCH": proppatch,
    "LOCK": lock,
    "UNLOCK": unlock,
}

"""The content-writing WebDAV methods: PUT, MKCOL, DELETE, COPY, MOVE."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.webdav.copymove import copy, move
from gateway.webdav.delete import delete
from gateway.webdav.mkcol import mkcol
from gateway.webdav.put import put

Handler = Callable[[web.Request, Share, DavPath], Awaitable[web.StreamResponse]]

HANDLERS: dict[str, Handler] = {
    "PUT": put,
    "MKCOL": mkcol,
    "DELETE": delete,
    "COPY": copy,
    "MOVE": move,
}

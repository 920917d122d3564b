"""aiohttp response helpers shared by both front-ends (a leaf, like errors and settings)."""

from __future__ import annotations

import mimetypes
from email.utils import format_datetime

from aiohttp import web

from gateway import errors
from gateway.errors import GatewayError
from gateway.storage.base import ObjectInfo

StatusTable = dict[type[GatewayError], int]

# What every front-end answers for each domain error; a front-end's own table starts here and
# overrides only where its protocol says otherwise.
COMMON_STATUS: StatusTable = {
    errors.BadRequest: 400,
    errors.TooLarge: 413,
    errors.NotFound: 404,
    errors.Exists: 412,
    errors.NotPermitted: 403,
    errors.Conflict: 409,
    errors.PreconditionFailed: 412,
    errors.Locked: 423,
    errors.AccessDenied: 403,
    errors.Unavailable: 503,
    errors.Upstream: 502,
}


def plain(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """A short text body naming the problem: what every refusal looks like."""
    return web.Response(
        status=status,
        text=message.rstrip("\n") + "\n",
        content_type="text/plain",
        charset="utf-8",
        headers=headers,
    )


def status_for(exc: GatewayError, table: StatusTable) -> int:
    """The status of the most specific class of ``exc`` found in ``table``."""
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return 500


def content_type_of(info: ObjectInfo, name: str) -> str:
    """The stored Content-Type, else one guessed from the name."""
    if info.content_type and info.content_type not in ("binary/octet-stream", ""):
        return info.content_type
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def validators(info: ObjectInfo) -> dict[str, str]:
    """ETag and Last-Modified, identical in GET, HEAD, PUT and PROPFIND answers."""
    return {
        "ETag": info.etag,
        "Last-Modified": format_datetime(info.last_modified, usegmt=True),
    }

"""aiohttp response helpers shared by both front-ends (a leaf, like errors and settings)."""

from __future__ import annotations

import mimetypes
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache

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


# Set by the app's Expect handler on a PUT that asked for ``100 Continue``: the PUT handler
# says it only once every check has passed, so a refused upload is never sent at all.
CONTINUE_PENDING = web.RequestKey("bucketdav.continue_pending", bool)


async def send_continue(request: web.Request) -> None:
    """Send the ``100 Continue`` a deferred ``Expect`` is waiting for (once)."""
    if request.get(CONTINUE_PENDING):
        request[CONTINUE_PENDING] = False
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the response proper has not started


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
    dot = name.rfind(".")
    return _guess_type(name[dot:].lower() if dot > 0 else "")


@lru_cache(maxsize=1024)
def _guess_type(suffix: str) -> str:
    # Per suffix, not per name: this runs on every GET and PROPFIND entry.
    guessed, _ = mimetypes.guess_type("x" + suffix, strict=False)
    return guessed or "application/octet-stream"


@lru_cache(maxsize=4096)
def http_date(moment: datetime) -> str:
    """RFC 9110 IMF-fixdate; cached because listings repeat a few timestamps many times."""
    return format_datetime(moment, usegmt=True)


def validators(info: ObjectInfo) -> dict[str, str]:
    """ETag and Last-Modified, identical in GET, HEAD, PUT and PROPFIND answers."""
    return {"ETag": info.etag, "Last-Modified": http_date(info.last_modified)}

"""What every write handler does first: refuse by policy, reach the lock service, and
answer 207 when some members of a collection failed."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from gateway.errors import GatewayError, NotFound, NotPermitted
from gateway.fs.ops import Failures
from gateway.fs.paths import DavPath, key_to_parts
from gateway.fs.share import Share
from gateway.responses import status_for
from gateway.storage.base import ObjectInfo
from gateway.webdav.errors import STATUS
from gateway.webdav.lockservice import LOCKS, LockService
from gateway.webdav.xml import escape, status_line, xml_response

# Methods a collection answers (the Allow header of a 405 for PUT on a collection).
COLLECTION_ALLOW = "COPY, DELETE, GET, HEAD, LOCK, MOVE, OPTIONS, PROPFIND, PROPPATCH, UNLOCK"


def refuse(reason: str | None) -> None:
    """Raise the policy's refusal (403, naming the flag), if there is one."""
    if reason is not None:
        raise NotPermitted(reason)


def locks(request: web.Request) -> LockService:
    return request.app[LOCKS]


async def current_file(share: Share, path: DavPath) -> ObjectInfo | None:
    """The file now at ``path`` (noise area or store), or None."""
    if share.is_noise(path):
        held = share.noise_file(path)
        return held.info if held is not None else None
    try:
        return await share.view.stat(share.key(path))
    except NotFound:
        return None


def key_href(share: Share, key: str) -> str:
    """The href of an object key in this share (collections end in ``/``)."""
    parts = key_to_parts(share.prefix, key)
    if parts is None:  # not a valid path: say which key, relative to the share
        return share.mount.rstrip("/") + "/" + quote(key[len(share.prefix) :], safe="/")
    return share.href(DavPath(parts), is_dir=key.endswith("/"))


def multistatus(share: Share, failures: Failures) -> web.Response:
    """207 with one response per member that failed, its status and why."""
    items = []
    for key in sorted(failures):
        error: GatewayError = failures[key]
        items.append(
            "<D:response>"
            f"<D:href>{escape(key_href(share, key))}</D:href>"
            f"<D:status>{status_line(status_for(error, STATUS))}</D:status>"
            f"<D:responsedescription>{escape(error.message)}</D:responsedescription>"
            "</D:response>"
        )
    return xml_response(207, '<D:multistatus xmlns:D="DAV:">' + "".join(items)
                        + "</D:multistatus>")

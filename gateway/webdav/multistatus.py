"""The 207 answer of a collection method (DELETE, COPY, MOVE) some of whose members failed."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from gateway.errors import GatewayError, status_for
from gateway.fs.ops import Failures
from gateway.fs.paths import DavPath, key_to_parts
from gateway.fs.share import Share
from gateway.webdav.xml import (
    MULTISTATUS_CLOSE,
    MULTISTATUS_OPEN,
    escape,
    status_line,
    xml_response,
)


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
            f"<D:status>{status_line(status_for(error))}</D:status>"
            f"<D:responsedescription>{escape(error.message)}</D:responsedescription>"
            "</D:response>"
        )
    return xml_response(207, MULTISTATUS_OPEN + "".join(items) + MULTISTATUS_CLOSE)

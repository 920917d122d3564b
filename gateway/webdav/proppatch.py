"""PROPPATCH: accept what Windows sets during every copy, refuse to store anything else.

Windows' Mini-Redirector sets ``Win32CreationTime``, ``Win32LastAccessTime``,
``Win32LastModifiedTime`` and ``Win32FileAttributes`` around each PUT and fails the copy on
anything but a 207 with 200 for each. They are accepted and NOT stored: an object store has
no place for them that would survive a copy or show in a listing, and Windows only needs
the answer. Every other dead property (Apple's, litmus', ...) is refused inside the 207
with 403 and a description: storing them would need a sidecar object per resource, which
would break the one-object-per-file contract. Live DAV: properties are protected.
PROPPATCH is atomic (RFC 4918 9.2): when one property fails the others are 424.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

from aiohttp import web

from gateway.errors import BadRequest
from gateway.fs.paths import DavPath
from gateway.fs.policy import may_write
from gateway.fs.share import Share
from gateway.webdav.lockservice import LOCKS
from gateway.webdav.precheck import refuse
from gateway.webdav.props import propstat, response
from gateway.webdav.xml import DAV, XmlDoc, dav, element, read_xml, xml_response

MS = "urn:schemas-microsoft-com:"
WIN32_PROPS = frozenset(
    f"{{{MS}}}{name}"
    for name in (
        "Win32CreationTime",
        "Win32LastAccessTime",
        "Win32LastModifiedTime",
        "Win32FileAttributes",
    )
)
DEAD_REFUSED = "dead properties are not stored by this server"
PROTECTED = "live properties are computed by the server and cannot be set"


def requested(doc: XmlDoc | None) -> list[str]:
    """The property names a DAV:propertyupdate sets or removes, in order."""
    if doc is None:
        raise BadRequest("PROPPATCH needs a DAV:propertyupdate body")
    if doc.root.tag != dav("propertyupdate"):
        raise BadRequest("a PROPPATCH body must be a DAV:propertyupdate element")
    names = list(_names(doc.root))
    if not names:
        raise BadRequest("DAV:propertyupdate sets or removes no property")
    return names


def _names(root: ET.Element) -> Iterator[str]:
    for action in root:
        if action.tag not in (dav("set"), dav("remove")):
            continue
        for prop in action.findall(dav("prop")):
            for child in prop:
                yield child.tag


def outcome(name: str) -> tuple[int, str | None]:
    """The status one property would get on its own, and why it was refused."""
    if name in WIN32_PROPS:
        return 200, None
    if name.startswith("{" + DAV + "}"):
        return 403, PROTECTED
    return 403, DEAD_REFUSED


def results(names: list[str]) -> list[tuple[int, str | None, list[str]]]:
    """(status, description, names) groups; all-or-nothing: if any property fails, the
    ones that would have succeeded are 424 Failed Dependency."""
    outcomes = {name: outcome(name) for name in dict.fromkeys(names)}
    failed = any(code != 200 for code, _ in outcomes.values())
    groups: dict[tuple[int, str | None], list[str]] = {}
    for name, (code, why) in outcomes.items():
        if failed and code == 200:
            code, why = 424, None
        groups.setdefault((code, why), []).append(name)
    return [(code, why, group) for (code, why), group in groups.items()]


async def proppatch(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    refuse(may_write(share.policy))
    names = requested(await read_xml(request))
    entry = await share.stat(path)
    await request.app[LOCKS].check_write(request, share, path, etag=entry.etag)
    stats = [
        propstat((element(name) for name in group), code, why)
        for code, why, group in results(names)
    ]
    body = response(share.href(path, is_dir=entry.is_dir), stats)
    return xml_response(207, f'<D:multistatus xmlns:D="DAV:">{body}</D:multistatus>')

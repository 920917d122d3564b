"""PROPPATCH: store dead properties, accept what Windows sets during every copy.

Windows' Mini-Redirector sets ``Win32CreationTime``, ``Win32LastAccessTime``,
``Win32LastModifiedTime`` and ``Win32FileAttributes`` around each PUT and fails the copy on
anything but a 207 with 200 for each. They are accepted and NOT stored: an object's dates
are the store's, and Windows only needs the answer. Every other property outside the DAV:
namespace is a dead property, kept in the state store per resource (``deadprops.py``) and
returned by PROPFIND. Live DAV: properties are protected (403). PROPPATCH is atomic
(RFC 4918 9.2): when one property fails the others are 424 and nothing is stored; past the
per-resource cap nothing is stored either (507 naming it). Instructions apply in document
order: a property set then removed in one request ends up removed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import web

from gateway.errors import BadRequest
from gateway.fs.paths import DavPath
from gateway.fs.policy import may_write
from gateway.fs.share import Share
from gateway.webdav.deadprops import PROPS, stored_xml
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
PROTECTED = "live properties are computed by the server and cannot be set"


@dataclass(frozen=True, slots=True)
class Update:
    """What one PROPPATCH asks, in document order, and its net effect on dead properties."""

    names: list[str]  # every property named, in order
    set: dict[str, str]  # dead properties to set: name -> element XML
    remove: list[str]  # dead properties to remove


def requested(doc: XmlDoc | None) -> Update:
    """The properties a DAV:propertyupdate sets or removes."""
    if doc is None:
        raise BadRequest("PROPPATCH needs a DAV:propertyupdate body")
    if doc.root.tag != dav("propertyupdate"):
        raise BadRequest("a PROPPATCH body must be a DAV:propertyupdate element")
    names: list[str] = []
    to_set: dict[str, str] = {}
    to_remove: dict[str, None] = {}
    for removing, prop in _instructions(doc.root):
        names.append(prop.tag)
        if outcome(prop.tag)[0] != 200 or prop.tag in WIN32_PROPS:
            continue
        if removing:
            to_set.pop(prop.tag, None)
            to_remove[prop.tag] = None
        else:
            to_remove.pop(prop.tag, None)
            to_set[prop.tag] = stored_xml(prop)
    if not names:
        raise BadRequest("DAV:propertyupdate sets or removes no property")
    return Update(names, to_set, list(to_remove))


def _instructions(root: ET.Element) -> Iterator[tuple[bool, ET.Element]]:
    """(is a remove, property element), in document order."""
    for action in root:
        if action.tag not in (dav("set"), dav("remove")):
            continue
        for prop in action.findall(dav("prop")):
            for child in prop:
                yield action.tag == dav("remove"), child


def outcome(name: str) -> tuple[int, str | None]:
    """The status one property would get on its own, and why it was refused."""
    if name.startswith("{" + DAV + "}"):
        return 403, PROTECTED
    return 200, None


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
    update = requested(await read_xml(request))
    entry = await share.stat(path)
    await request.app[LOCKS].check_write(request, share, path, etag=entry.etag)
    groups = results(update.names)
    if all(code == 200 for code, _, _ in groups) and (update.set or update.remove):
        # PropsLimit (507, naming the cap) or StateUnavailable (503): nothing is stored.
        await request.app[PROPS].patch(share, path, entry.is_dir, update.set, update.remove)
    stats = [
        propstat((element(name) for name in group), code, why) for code, why, group in groups
    ]
    body = response(share.href(path, is_dir=entry.is_dir), stats)
    return xml_response(207, f'<D:multistatus xmlns:D="DAV:">{body}</D:multistatus>')

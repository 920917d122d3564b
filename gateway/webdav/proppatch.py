"""PROPPATCH: store dead properties, accept what Windows sets during every copy.

Windows' Mini-Redirector sets ``Win32CreationTime``, ``Win32LastAccessTime``,
``Win32LastModifiedTime`` and ``Win32FileAttributes`` around each PUT and fails the copy on
anything but a 207 with 200 for each. They are accepted and NOT stored, except the
modification time. Every other property outside the DAV: namespace is a dead property,
kept in the state store per resource (``deadprops.py``) and returned by PROPFIND. Live DAV:
properties are protected (403), except ``getlastmodified``. PROPPATCH is atomic (RFC 4918
9.2): when one property fails the others are 424 and nothing is stored; past the
per-resource cap nothing is stored either (507 naming it). Instructions apply in document
order: a property set then removed in one request ends up removed.

The modification time (``Win32LastModifiedTime``, ``DAV:getlastmodified``; an HTTP date)
of a file never rewrites its data: it is 200 when the file already shows that time (whole
seconds); on a zero-byte placeholder, or a file created under the lock the request holds,
it is recorded for that version (``gateway.engine.mtimes``) and the PUT that fills the
placeholder under the lock stores it in the object; on any other file it is 403 with a
description (docs/SEMANTICS.md, "Modification times").
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from aiohttp import web

from gateway.engine.mtimes import NAMESPACE as RESERVED
from gateway.errors import BadRequest
from gateway.fs.listing import Entry
from gateway.fs.paths import DavPath
from gateway.fs.policy import may_write
from gateway.fs.share import Share
from gateway.responses import http_date
from gateway.webdav.deadprops import PROPS
from gateway.webdav.lockservice import LOCKS
from gateway.webdav.precheck import refuse
from gateway.webdav.props import propstat, response
from gateway.webdav.xml import (
    DAV,
    MULTISTATUS_CLOSE,
    MULTISTATUS_OPEN,
    XmlDoc,
    dav,
    element,
    read_xml,
    serialize,
    xml_response,
)

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
# The modification time: stored at creation, never by rewriting an object's data.
TIME_PROPS = frozenset({f"{{{MS}}}Win32LastModifiedTime", dav("getlastmodified")})
PROTECTED = "live properties are computed by the server and cannot be set"
RESERVED_PROPS = "properties in the urn:bucketdav: namespace are the gateway's own"
TIME_FIXED = (
    "the file has data, so its modification time was set when it was created "
    "(X-OC-Mtime on its PUT, or this property before that PUT under a lock) and is not "
    "rewritten: it shows {shown}"
)


@dataclass(frozen=True, slots=True)
class Update:
    """What one PROPPATCH asks, in document order, and its net effect on dead properties."""

    names: list[str]  # every property named, in order
    set: dict[str, str]  # dead properties to set: name -> element XML
    remove: list[str]  # dead properties to remove
    times: dict[str, str | None]  # time properties: name -> text set (None: removed)


def requested(doc: XmlDoc | None) -> Update:
    """The properties a DAV:propertyupdate sets or removes."""
    if doc is None:
        raise BadRequest("PROPPATCH needs a DAV:propertyupdate body")
    if doc.root.tag != dav("propertyupdate"):
        raise BadRequest("a PROPPATCH body must be a DAV:propertyupdate element")
    names: list[str] = []
    to_set: dict[str, str] = {}
    to_remove: dict[str, None] = {}
    times: dict[str, str | None] = {}
    for removing, prop in _instructions(doc.root):
        names.append(prop.tag)
        if prop.tag in TIME_PROPS:
            times[prop.tag] = None if removing else (prop.text or "").strip()
            continue
        if outcome(prop.tag)[0] != 200 or prop.tag in WIN32_PROPS:
            continue
        if removing:
            to_set.pop(prop.tag, None)
            to_remove[prop.tag] = None
        else:
            to_remove.pop(prop.tag, None)
            to_set[prop.tag] = serialize(prop)
    if not names:
        raise BadRequest("DAV:propertyupdate sets or removes no property")
    return Update(names, to_set, list(to_remove), times)


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
    if name.startswith("{" + RESERVED + "}"):
        return 403, RESERVED_PROPS
    return 200, None


def results(names: list[str], decided: dict[str, tuple[int, str | None]] | None = None
            ) -> list[tuple[int, str | None, list[str]]]:
    """(status, description, names) groups; all-or-nothing: if any property fails, the
    ones that would have succeeded are 424 Failed Dependency. ``decided``: outcomes
    found by looking at the resource (the time properties)."""
    outcomes = {name: (decided or {}).get(name) or outcome(name) for name in
                dict.fromkeys(names)}
    failed = any(code != 200 for code, _ in outcomes.values())
    groups: dict[tuple[int, str | None], list[str]] = {}
    for name, (code, why) in outcomes.items():
        if failed and code == 200:
            code, why = 424, None
        groups.setdefault((code, why), []).append(name)
    return [(code, why, group) for (code, why), group in groups.items()]


def _seconds(text: str) -> float | None:
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def time_outcome(name: str, text: str | None, entry: Entry, may_record: bool
                 ) -> tuple[int, str | None, float | None]:
    """(status, description, time to record) for one time property of ``entry``.
    ``may_record``: a placeholder, or a file created under the request's lock."""
    windows = name != dav("getlastmodified")
    if text is None:  # removed: Windows needs its 200; a live date cannot go
        return (200, None, None) if windows else (403, PROTECTED, None)
    when = _seconds(text)
    if entry.is_dir or when is None:
        # Not kept for collections; an unreadable Win32 value is accepted as before.
        if windows:
            return 200, None, None
        return 403, ("a collection's date is not stored" if entry.is_dir
                     else "not an HTTP date (RFC 9110): nothing was stored"), None
    shown = entry.last_modified
    if shown is not None and int(shown.timestamp()) == math.floor(when):
        return 200, None, None
    if may_record:
        return 200, None, when
    return 403, TIME_FIXED.format(shown=http_date(shown) if shown else "no date"), None


async def proppatch(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    refuse(may_write(share.policy))
    update = requested(await read_xml(request))
    entry = await share.stat(path)
    service = request.app[LOCKS]
    tokens = await service.check_write(request, share, path, etag=entry.etag)
    decided: dict[str, tuple[int, str | None]] = {}
    record: float | None = None
    if update.times and not entry.is_dir and not share.is_noise(path):
        may_record = entry.size == 0 or (
            bool(tokens) and await service.created_under_lock(share, path, tokens))
        for name, text in update.times.items():
            code, why, when = time_outcome(name, text, entry, may_record)
            decided[name] = (code, why)
            record = when if when is not None else record
    groups = results(update.names, decided)
    if all(code == 200 for code, _, _ in groups):
        if update.set or update.remove:
            # PropsLimit (507, naming the cap) or StateUnavailable (503): nothing is stored.
            await request.app[PROPS].patch(share, path, entry.is_dir, update.set,
                                           update.remove)
        if record is not None:
            await share.view.give_mtime(await share.file_info(path), record)
    stats = [
        propstat((element(name) for name in group), code, why) for code, why, group in groups
    ]
    body = response(share.href(path, is_dir=entry.is_dir), stats)
    return xml_response(207, MULTISTATUS_OPEN + body + MULTISTATUS_CLOSE)

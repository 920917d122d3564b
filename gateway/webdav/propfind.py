"""PROPFIND: Depth 0 and 1, allprop / prop / propname, streamed 207 answers.

A Depth 1 answer is written while the listing is read, page by page, in chunks of about
32 KiB: a folder of 10,000 entries never becomes one string and the first bytes leave at
once. Only what was asked for is sent (Windows refuses answers past about 1 MB).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from gateway.errors import BadRequest
from gateway.fs.listing import Entry
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.responses import send_streamed
from gateway.webdav.headers import parse_depth
from gateway.webdav.lockservice import LOCKS, LockService
from gateway.webdav.props import ALLPROP, LIVE, LOCKDISCOVERY, Resource, names_of, render
from gateway.webdav.xml import (
    CONTENT_TYPE,
    XML_DECL,
    XmlDoc,
    dav,
    dav_error,
    read_xml,
    xml_response,
)

OPEN = '<D:multistatus xmlns:D="DAV:">'
CLOSE = "</D:multistatus>"
FLUSH_BYTES = 32 * 1024


@dataclass(frozen=True, slots=True)
class PropRequest:
    names: tuple[str, ...] | None = None  # None: allprop
    include: tuple[str, ...] = ()
    propname: bool = False

    @property
    def wants_locks(self) -> bool:
        if self.propname:
            return False
        return self.names is None or LOCKDISCOVERY in self.names

    def render(self, resource: Resource) -> str:
        if self.propname:
            return render(resource, names_of(resource), values=False)
        if self.names is not None:
            return render(resource, self.names)
        present = [name for name in ALLPROP if LIVE[name](resource) is not None]
        return render(resource, [*present, *self.include])


def parse_propfind(doc: XmlDoc | None) -> PropRequest:
    """What a PROPFIND body asks for; an empty body is allprop."""
    if doc is None:
        return PropRequest()
    if doc.root.tag != dav("propfind"):
        raise BadRequest("a PROPFIND body must be a DAV:propfind element")
    kinds = [c for c in doc.root if c.tag in (dav("prop"), dav("allprop"), dav("propname"))]
    if len(kinds) != 1:
        raise BadRequest("DAV:propfind must hold exactly one of prop, allprop or propname")
    kind = kinds[0]
    if kind.tag == dav("prop"):
        return PropRequest(names=tuple(child.tag for child in kind))
    if kind.tag == dav("propname"):
        return PropRequest(propname=True)
    include = doc.root.find(dav("include"))
    return PropRequest(include=tuple(c.tag for c in include) if include is not None else ())


async def propfind(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    depth = parse_depth(request.headers, "PROPFIND", ("0", "1", "infinity"))
    wanted = parse_propfind(await read_xml(request))
    entry = await share.stat(path)  # client noise: noise area or a 404 without store call
    if entry.is_dir and depth == "infinity":
        return dav_error(403, "propfind-finite-depth")
    locks = request.app[LOCKS]
    first = wanted.render(_resource(locks, share, path, entry, wanted))
    if not entry.is_dir or depth == "0":
        return xml_response(207, OPEN + first + CLOSE)

    resp = web.StreamResponse(status=207, headers={"Content-Type": CONTENT_TYPE})
    body = _members(locks, share, path, first, wanted)
    return await send_streamed(request, resp, body)


async def _members(
    locks: LockService, share: Share, path: DavPath, first: str, wanted: PropRequest
) -> AsyncGenerator[bytes, None]:
    """The 207 body of a Depth 1 answer, in chunks of about ``FLUSH_BYTES``."""
    entries = share.listdir(path)
    # The first page is read before the first chunk, so before the status: a store that
    # fails at once gets a clean error status instead of a 207 cut short.
    head = await anext(entries, None)
    yield (XML_DECL + OPEN + first).encode("utf-8")
    buffer: list[str] = []
    size = 0
    async for child in _chain(head, entries):
        fragment = wanted.render(
            _resource(locks, share, path.child(child.name, child.is_dir), child, wanted)
        )
        buffer.append(fragment)
        size += len(fragment)
        if size >= FLUSH_BYTES:
            yield "".join(buffer).encode("utf-8")
            buffer, size = [], 0
    buffer.append(CLOSE)
    yield "".join(buffer).encode("utf-8")


def _resource(
    locks: LockService, share: Share, path: DavPath, entry: Entry, wanted: PropRequest
) -> Resource:
    held = locks.discover(share, path) if wanted.wants_locks else ()
    return Resource(share.href(path, is_dir=entry.is_dir), entry, held)


async def _chain(head: Entry | None, rest: AsyncIterator[Entry]) -> AsyncIterator[Entry]:
    if head is None:
        return
    yield head
    async for entry in rest:
        yield entry

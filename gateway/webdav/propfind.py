"""PROPFIND: Depth 0 and 1, allprop / prop / propname, streamed 207 answers.

A Depth 1 answer is written while the listing is read, a chunk per listing page: a folder
of 10,000 entries never becomes one string, and the first bytes leave as soon as the first
page is in. Only what was asked for is sent (Windows refuses answers past about 1 MB).

Locks and dead properties come from the state store: a Depth 1 answer reads the locks of
the whole folder in one call, and the dead properties (only when allprop, propname or a
name no live property has asks for them) of a page's members in one call too. A state
store that is unavailable leaves them out: reads never depend on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from aiohttp import web

from gateway.errors import BadRequest, NotFound
from gateway.fs.listing import Entry, Listing, member_href, open_dir
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.responses import batches, send_streamed
from gateway.state import LockRecord
from gateway.storage.base import ObjectInfo
from gateway.webdav.deadprops import PROPS, DeadProps
from gateway.webdav.headers import parse_depth
from gateway.webdav.lockservice import LOCKS, LockService
from gateway.webdav.props import ALLPROP, LIVE, LOCKDISCOVERY, Resource, names_of, render
from gateway.webdav.xml import (
    CONTENT_TYPE,
    MULTISTATUS_CLOSE,
    MULTISTATUS_OPEN,
    XML_DECL,
    XmlDoc,
    dav,
    dav_error,
    read_xml,
    xml_response,
)

FLUSH_BYTES = 32 * 1024
BATCH = 1000  # members rendered together when the listing does not hand out its pages
_NONE: Mapping[str, str] = MappingProxyType({})  # no dead properties


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

    @property
    def wants_dead(self) -> bool:
        """Dead properties are read for allprop, propname and names no live one has."""
        return self.names is None or any(name not in LIVE for name in self.names)

    def render(self, resource: Resource) -> str:
        if self.propname:
            return render(resource, names_of(resource), values=False)
        if self.names is not None:
            return render(resource, self.names)
        known = {name: LIVE[name](resource) for name in ALLPROP}  # rendered once
        present = [name for name, value in known.items() if value is not None]
        dead = [name for name in resource.dead if name not in LIVE]
        return render(resource, [*present, *dead, *self.include], known=known)


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


def md5_etags(share: Share) -> bool:
    """Whether a single-part upload's ETag is the MD5 of its bytes on this share, as on S3
    and its kin (GCS, R2, MinIO, s3rver), so PROPFIND can answer ``oc:checksums`` with no
    request per object. Not under SSE-KMS (its ETags are no MD5), never on a local folder
    (its ETags are time and size)."""
    return share.settings.source.scheme != "file" and \
        share.settings.store.sse not in ("aws:kms", "aws:kms:dsse")


class _Reader:
    """What one PROPFIND reads from the state store: the locks and dead properties of the
    resources it answers for, given up on for the rest of the request once the store has
    been found unavailable."""

    def __init__(self, request: web.Request, share: Share, wanted: PropRequest) -> None:
        self.locks: LockService = request.app[LOCKS]
        self.props: DeadProps = request.app[PROPS]
        self.share = share
        self.wanted = wanted
        self.dead_ok = wanted.wants_dead
        quota = share.quota
        # The last count (gateway.fs.quota); none before the first: the properties are left
        # out rather than guessed.
        self.quota = (quota.used, quota.available or 0) if quota is not None and \
            quota.used is not None else None
        self.md5_etags = md5_etags(share)

    async def dead(self, path: DavPath, entry: Entry) -> dict[str, str]:
        if not self.dead_ok:
            return {}
        found = await self.props.get(self.share, path, entry.is_dir)
        if found is None:
            self.dead_ok = False
            return {}
        return found

    async def one(self, path: DavPath, entry: Entry) -> Resource:
        held = await self.locks.discover(self.share, path) if self.wanted.wants_locks else ()
        return Resource(self.share.href(path, is_dir=entry.is_dir), entry, held,
                        await self.dead(path, entry), self.quota if entry.is_dir else None,
                        self.md5_etags)

    async def dead_of(self, parent: DavPath, members: Sequence[Entry]
                      ) -> Sequence[Mapping[str, str]]:
        """The dead properties of a batch of ``parent``'s members, in order (none at all,
        and no state call, when the request does not ask for them)."""
        if not self.dead_ok:
            return [_NONE] * len(members)
        found = await self.props.get_many(
            self.share, [(parent.child(c.name, c.is_dir), c.is_dir) for c in members])
        if found is None:
            self.dead_ok = False
            return [_NONE] * len(members)
        return found

    def member(self, nearby: Sequence[LockRecord], parent: DavPath, entry: Entry, href: str,
               dead: Mapping[str, str]) -> Resource:
        held = self.locks.covering_of(self.share, parent.child(entry.name, entry.is_dir),
                                      nearby) if nearby else ()
        return Resource(href, entry, held, dead, self.quota if entry.is_dir else None,
                        self.md5_etags)


async def propfind(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    depth = parse_depth(request.headers, "PROPFIND", ("0", "1", "infinity"))
    wanted = parse_propfind(await read_xml(request))
    entry, entries = await _target(share, path, listed=depth == "1")
    if entry.is_dir and depth == "infinity":
        return dav_error(403, "propfind-finite-depth")
    reader = _Reader(request, share, wanted)
    first = wanted.render(await reader.one(path, entry))
    if not entry.is_dir or depth == "0":
        return xml_response(207, MULTISTATUS_OPEN + first + MULTISTATUS_CLOSE)

    resp = web.StreamResponse(status=207, headers={"Content-Type": CONTENT_TYPE})
    body = _members(reader, path, first, entries or share.listdir(path))
    return await send_streamed(request, resp, body)


async def _target(share: Share, path: DavPath, listed: bool
                  ) -> tuple[Entry, AsyncIterator[Entry] | None]:
    """What ``path`` names and, when its members are ``listed``, the directory's listing
    with its first page read: that page also says whether the directory exists, so a
    folder costs one store request, not two. Without a trailing slash the HEAD that looks
    for a file runs alongside it. Client noise and the root: ``share.stat`` (no request)."""
    if not listed or path.is_root or share.is_noise(path):
        return await share.stat(path), None
    if path.trailing_slash:
        entries = await open_dir(share, path)
        if entries is None:
            raise NotFound(f"{share.href(path)} does not exist")
        return Entry(path.name, True), entries
    info, opened = await asyncio.gather(share.file_info(path), open_dir(share, path),
                                        return_exceptions=True)
    if isinstance(info, ObjectInfo):
        return Entry.file(path.name, info), None
    if not isinstance(info, NotFound):
        raise info
    if isinstance(opened, BaseException):
        raise opened
    if opened is None:
        raise NotFound(f"{share.href(path)} does not exist")
    return Entry(path.name, True), opened


async def _members(reader: _Reader, path: DavPath, first: str, entries: AsyncIterator[Entry]
                   ) -> AsyncGenerator[bytes, None]:
    """The 207 body of a Depth 1 answer, in chunks of about ``FLUSH_BYTES`` or more (a
    listing page's worth at a time)."""
    share, wanted = reader.share, reader.wanted
    runs = entries.batches() if isinstance(entries, Listing) else batches(entries, BATCH)
    # The first page is read before the first chunk, so before the status: a store that
    # fails at once gets a clean error status instead of a 207 cut short.
    head = await anext(runs, None)
    nearby: Sequence[LockRecord] = ()
    if wanted.wants_locks:
        nearby = await reader.locks.nearby(share, path) or ()
    yield (XML_DECL + MULTISTATUS_OPEN + first).encode("utf-8")
    base = share.href(path, is_dir=True)
    buffer: list[str] = []
    size = 0
    async for run in _chain(head, runs):
        dead = await reader.dead_of(path, run)
        for child, props in zip(run, dead, strict=True):
            fragment = wanted.render(reader.member(nearby, path, child,
                                                   member_href(base, child), props))
            buffer.append(fragment)
            size += len(fragment)
        if size >= FLUSH_BYTES:
            yield "".join(buffer).encode("utf-8")
            buffer, size = [], 0
    buffer.append(MULTISTATUS_CLOSE)
    yield "".join(buffer).encode("utf-8")


async def _chain(head: list[Entry] | None, rest: AsyncIterator[list[Entry]]
                 ) -> AsyncIterator[list[Entry]]:
    if head is None:
        return
    yield head
    async for run in rest:
        yield run

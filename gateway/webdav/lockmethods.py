"""LOCK and UNLOCK (RFC 4918 sections 9.10 and 9.11).

Every client built on neon (davfs2, cadaver, litmus) needs both the ``Lock-Token`` header
and ``prop/lockdiscovery/activelock`` in the body, with the owner echoed as sent. A LOCK on
an unmapped URL creates the zero-byte placeholder Finder and Windows then PUT into, and
answers 201 (davfs2 needs the 201 for its following ``If-None-Match: *`` PUT). Locks live
in the state store (``LockService``): while it cannot be reached, LOCK and UNLOCK are 503
naming it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.auth.principal import principal_of
from gateway.errors import BadRequest, Conflict, Exists, NotFound, PreconditionFailed
from gateway.fs.listing import Entry
from gateway.fs.paths import DavPath
from gateway.fs.policy import may_write
from gateway.fs.preconditions import etag_matches
from gateway.fs.share import Share
from gateway.webdav.headers import parse_depth
from gateway.webdav.ifheader import parse_if, submitted_tokens
from gateway.webdav.lockservice import LOCKS, ActiveLock, LockService
from gateway.webdav.precheck import refuse
from gateway.webdav.props import activelock
from gateway.webdav.xml import XmlDoc, dav, dav_error, read_xml, xml_response

OWNER = frozenset({dav("owner")})


@dataclass(frozen=True, slots=True)
class LockRequest:
    exclusive: bool
    owner: str  # the owner element's XML, "" when none was sent


def parse_lockinfo(doc: XmlDoc) -> LockRequest:
    root = doc.root
    if root.tag != dav("lockinfo"):
        raise BadRequest("a LOCK body must be a DAV:lockinfo element")
    scope = root.find(dav("lockscope"))
    kinds = {child.tag for child in scope} if scope is not None else set()
    if kinds not in ({dav("exclusive")}, {dav("shared")}):
        raise BadRequest("DAV:lockinfo needs a lockscope of exclusive or shared")
    locktype = root.find(dav("locktype"))
    if locktype is None or [c.tag for c in locktype] != [dav("write")]:
        raise BadRequest("DAV:lockinfo needs a locktype of write (the only lock type)")
    owner = root.find(dav("owner"))
    return LockRequest(
        exclusive=kinds == {dav("exclusive")},
        owner=doc.verbatim(owner) if owner is not None else "",
    )


def parse_timeout(value: str | None) -> int | None:
    """Seconds asked for by ``Timeout: Second-600, Infinite``; None for Infinite, a
    missing header or nothing understood (the server's maximum is granted then)."""
    for part in (value or "").split(","):
        spec = part.strip().lower()
        if spec == "infinite":
            return None
        digits = spec.removeprefix("second-").lstrip("0")
        if spec.startswith("second-") and digits.isascii() and digits.isdigit():
            # Twelve digits are past any cap; more would make int() refuse (and cost).
            return int(digits) if len(digits) <= 12 else None
    return None


def granted_headers(lock: ActiveLock) -> dict[str, str]:
    """The reply says the timeout granted: what was asked up to ``--max-lock-timeout``."""
    return {"Lock-Token": f"<{lock.token}>", "Timeout": f"Second-{lock.timeout}"}


def discovery(lock: ActiveLock) -> str:
    return f'<D:prop xmlns:D="DAV:"><D:lockdiscovery>{activelock(lock)}</D:lockdiscovery></D:prop>'


def _check_conditions(request: web.Request, entry: Entry | None) -> None:
    """If-Match / If-None-Match on a LOCK (davfs2 sends ``If-None-Match: *`` to create)."""
    etag = entry.etag if entry else None
    if_match = request.headers.get("If-Match")
    if if_match is not None and not (
        entry is not None and (if_match.strip() == "*" or etag_matches(if_match, etag, strong=True))
    ):
        raise PreconditionFailed("If-Match failed: the resource does not match")
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and entry is not None and (
        if_none_match.strip() == "*" or etag_matches(if_none_match, etag, strong=False)
    ):
        raise PreconditionFailed("If-None-Match failed: the resource exists")


async def _create_placeholder(share: Share, path: DavPath) -> bool:
    """Write the zero-byte object a LOCK on an unmapped URL creates; False if something
    appeared there meanwhile (the lock then simply applies to it)."""
    try:
        await share.view.put(share.key(path), b"", create_only=True)
    except Exists:
        return False  # the view forgot what it knew of the key
    return True


async def lock(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    refuse(may_write(share.policy))
    doc = await read_xml(request, keep=OWNER)
    locks = request.app[LOCKS]
    timeout = parse_timeout(request.headers.get("Timeout"))
    if doc is None:
        return await _refresh(request, share, path, locks, timeout)
    wanted = parse_lockinfo(doc)
    depth = parse_depth(request.headers, "LOCK", ("0", "infinity"))  # never 1 (RFC 4918 9.10.3)
    try:
        entry: Entry | None = await share.stat(path)
    except NotFound:
        entry = None
    _check_conditions(request, entry)
    await locks.check_if(request, share, path, entry.etag if entry else None)
    if entry is None:
        if path.trailing_slash:
            raise Conflict("LOCK cannot create a collection: create it with MKCOL first")
        if not await share.is_dir(path.parent):
            raise Conflict(f"the parent collection {share.href(path.parent)} does not exist")
        share.refuse_hidden(path, is_dir=False)  # it would create a hidden name: 403
    granted = await locks.lock(
        share,
        path,
        is_dir=entry is not None and entry.is_dir,
        exclusive=wanted.exclusive,
        depth="infinity" if depth == "infinity" else "0",
        owner=wanted.owner,
        timeout=timeout,
        principal=principal_of(request),
    )
    status = 200
    if entry is None:
        # Client noise kept out of the store gets its lock but no object: Finder LOCKs
        # "._name" before writing it, and that write goes to the noise area.
        try:
            created = share.is_noise(path) or await _create_placeholder(share, path)
        except BaseException:
            await locks.unlock(share, path, granted.token, principal_of(request))
            raise
        if created:
            status = 201
            await locks.note_created(share, path, {granted.token})
    return xml_response(status, discovery(granted), granted_headers(granted))


async def _refresh(
    request: web.Request,
    share: Share,
    path: DavPath,
    locks: LockService,
    timeout: int | None,  # noqa: ASYNC109 - a lock's Timeout (RFC 4918), not a deadline
) -> web.StreamResponse:
    """LOCK without a body: refresh the lock named in the If header."""
    header = request.headers.get("If")
    if not header:
        raise BadRequest(
            "a LOCK without a body refreshes a lock and needs an If header with its token"
        )
    tokens = submitted_tokens(parse_if(header))
    refreshed = await locks.refresh(share, path, tokens, timeout, principal_of(request))
    return xml_response(
        200, discovery(refreshed[0]), {"Timeout": f"Second-{refreshed[0].timeout}"}
    )


async def unlock(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    raw = request.headers.get("Lock-Token", "").strip()
    token = raw.removeprefix("<").removesuffix(">").strip()  # tolerate a token without <>
    if not token:
        raise BadRequest("UNLOCK needs a Lock-Token header")
    if not await request.app[LOCKS].unlock(share, path, token, principal_of(request)):
        return dav_error(409, "lock-token-matches-request-uri")
    return web.Response(status=204)

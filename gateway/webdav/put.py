"""PUT: a whole new version of a file, streamed, visible only when complete.

Order of checks (each refusal before a byte of the body is stored): read-only, the path
names a collection (405), partial PUT (400), missing parent (409), preconditions (412),
locks (423/412), the overwrite policy (403, naming --allow-overwrite; placeholders
excepted), the announced length, a malformed digest header (400). Then the body streams to
the store (one PutObject, or a multipart upload), and only a body of the announced length
and of the digests it came with (``Content-MD5``, ``Repr-Digest``, ``Content-Digest``,
ownCloud's ``OC-Checksum``) is committed.

``X-OC-Mtime`` (seconds since the epoch, as rclone's owncloud/nextcloud vendors and the
Nextcloud clients send it) is stored as the object's modification time, at creation
(``gateway.storage.mtime``), and answered with ``X-OC-MTime: accepted``. Without it, a
PUT under a lock that fills a placeholder given a time by PROPPATCH stores that time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.engine.digests import expected_digests, verified
from gateway.engine.upload import CHUNK, announced_length
from gateway.errors import BadRequest, Conflict, MethodNotAllowed, PreconditionFailed
from gateway.fs import ops, policy
from gateway.fs.paths import DavPath
from gateway.fs.preconditions import Outcome, evaluate
from gateway.fs.share import Share
from gateway.responses import guess_type, send_continue, validators
from gateway.storage.mtime import parse_mtime
from gateway.webdav.lockservice import LOCKS
from gateway.webdav.precheck import current_file, refuse


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The request body (Content-Length or chunked), a malformed one as a 400."""
    await send_continue(request)  # every check has passed: now the client may send it
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            yield chunk
    except HttpProcessingError as exc:
        raise BadRequest(f"the request body is malformed ({exc.message}); nothing was written"
                         ) from None


def content_type(request: web.Request, path: DavPath) -> str | None:
    """The type the client sent, else one guessed from the name, stored on the object."""
    sent = request.headers.get("Content-Type", "").strip()
    if sent:
        return sent
    return guess_type(path.name)


def sent_mtime(request: web.Request) -> float | None:
    """The ``X-OC-Mtime`` the client sent; a malformed one is a 400 before the body."""
    text = request.headers.get("X-OC-Mtime")
    if text is None:
        return None
    mtime = parse_mtime(text)
    if mtime is None:
        raise BadRequest("X-OC-Mtime must be a time in seconds since the epoch "
                         f"(got {text[:40]!r}); nothing was written")
    return mtime


async def put(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    refuse(policy.may_write(share.policy))
    if path.is_root or path.trailing_slash:
        raise MethodNotAllowed(f"{share.href(path)} is a collection; PUT writes files",
                               collection=True)
    if "Content-Range" in request.headers:
        raise BadRequest("partial PUT (Content-Range) is not supported: PUT writes whole objects")
    expected = announced_length(request.headers, request.content_length)
    digests = expected_digests(request.headers)
    mtime = sent_mtime(request)
    noise = share.is_noise(path)  # client noise: the share's noise area, not the store
    share.refuse_hidden(path, is_dir=False)  # a name the share's filters hide: 403
    if not await share.is_dir(path.parent):
        raise Conflict(f"the parent collection {share.href(path.parent)} does not exist")
    info = await current_file(share, path)
    if info is None and not noise and await share.is_dir(path):
        raise MethodNotAllowed(
            f"{share.href(path, is_dir=True)} is a collection; PUT writes files", collection=True
        )
    if evaluate(request.headers, info, safe_method=False) is Outcome.FAILED:
        raise PreconditionFailed("precondition failed: the object's ETag or date differs")
    service = request.app[LOCKS]
    tokens = await service.check_write(request, share, path, etag=info.etag if info else None)
    under_lock = bool(tokens) and await service.created_under_lock(share, path, tokens)
    if info is not None and not noise:
        refuse(policy.may_overwrite(share.policy, info.size, under_lock))
    given = None if noise else mtime
    if given is None and tokens and info is not None and info.size == 0 and not noise:
        # Windows: PROPPATCH of the time on the placeholder, then this PUT with the token.
        given = await share.view.mtime_of(info)
    written = await ops.write_file(
        share,
        path,
        verified(body_chunks(request), digests) if digests else body_chunks(request),
        content_type=content_type(request, path),
        expected_size=expected,
        # Creating in default mode, or when the client asks (If-None-Match: *): commit only
        # if still absent (one atomic PutObject).
        create_only=info is None and (not share.policy.allow_overwrite
                                      or request.headers.get("If-None-Match", "").strip() == "*"),
        replaces=info.size if info is not None else 0,
        mtime=given,
    )
    if tokens and (info is None or info.size == 0):
        # A placeholder filled under a lock may be rewritten with the token until UNLOCK.
        await service.note_created(share, path, tokens)
    headers = validators(written)
    if mtime is not None and not noise:
        headers["X-OC-MTime"] = "accepted"  # ownCloud's answer: the time was stored
    return web.Response(status=201 if info is None else 204, headers=headers)

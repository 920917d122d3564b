"""MKCOL: a new collection is a ``dir/`` marker object."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import Conflict, Exists, MethodNotAllowed, NotFound, NotPermitted
from gateway.fs import ops, policy
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.responses import plain
from gateway.webdav.lockservice import LOCKS
from gateway.webdav.precheck import refuse


async def _existing(share: Share, path: DavPath) -> bool | None:
    """What is at ``path``: None for nothing, else whether it is a collection. An object
    found under the name counts as a file, as a GET of it would serve it."""
    if path.is_root:
        return True
    try:
        await share.file_info(path)
        return False
    except NotFound:
        return True if await share.is_dir(path) else None


async def mkcol(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    refuse(policy.may_create(share.policy))
    if request.body_exists:
        return plain(415, "MKCOL with a request body is not supported")
    existing = await _existing(share, path)
    if existing is not None:
        raise MethodNotAllowed(f"{share.href(path, is_dir=True)} already exists",
                               collection=existing)
    if share.is_noise(path):
        raise NotPermitted(
            f"{path.name} is client metadata, kept out of the store on this share "
            "(start bucketdav with --store-client-noise to store it)"
        )
    if not await share.is_dir(path.parent):
        raise Conflict(f"the parent collection {share.href(path.parent)} does not exist")
    await request.app[LOCKS].check_write(request, share, path)
    try:
        # Create-only at the commit: of two MKCOLs of one new name, one wins.
        await ops.mkdir(share, path, create_only=True)
    except Exists:
        raise MethodNotAllowed(f"{share.href(path, is_dir=True)} already exists",
                               collection=True) from None
    return web.Response(status=201, headers={"Location": share.href(path, is_dir=True)})

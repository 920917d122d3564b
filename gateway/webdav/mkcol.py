"""MKCOL: a new collection is a ``dir/`` marker object."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import Conflict, NotFound, NotPermitted
from gateway.fs import ops, policy
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.responses import plain
from gateway.webdav.guards import locks, refuse


async def _exists(share: Share, path: DavPath) -> bool:
    try:
        await share.view.stat(share.key(path))
        return True
    except NotFound:
        return await share.is_dir(path)


async def mkcol(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    refuse(policy.may_create(share.policy))
    if request.body_exists:
        return plain(415, "MKCOL with a request body is not supported")
    if path.is_root or await _exists(share, path):
        return plain(405, f"{share.href(path, is_dir=True)} already exists",
                     {"Allow": "COPY, DELETE, GET, HEAD, LOCK, MOVE, OPTIONS, PROPFIND, PUT"})
    if share.is_noise(path):
        raise NotPermitted(
            f"{path.name} is client metadata, kept out of the store on this share "
            "(start bucketdav with --store-client-noise to store it)"
        )
    if not await share.is_dir(path.parent):
        raise Conflict(f"the parent collection {share.href(path.parent)} does not exist")
    await locks(request).check_write(request, share, path)
    await ops.mkdir(share, path)
    return web.Response(status=201, headers={"Location": share.href(path, is_dir=True)})

"""DELETE: one object, or a collection recursively (RFC 4918 section 9.6).

Refused by default (--allow-delete). A collection is everything under its EXACT ``dir/``
prefix, deleted in batches; members that could not be deleted are listed in a 207.
Client-noise files live in the noise area and are dropped from it (no flag needed: the
store is not touched). The resource's locks and dead properties go with it.
"""

from __future__ import annotations

from aiohttp import web

from gateway.errors import NotPermitted
from gateway.fs import ops, policy
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.webdav.deadprops import PROPS
from gateway.webdav.lockservice import LOCKS
from gateway.webdav.multistatus import multistatus
from gateway.webdav.precheck import refuse


async def delete(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    refuse(policy.may_write(share.policy))
    service = request.app[LOCKS]
    if share.is_noise(path):
        entry = await share.stat(path)  # NotFound unless held
        await service.check_write(request, share, path, etag=entry.etag)
        await ops.delete_file(share, path)
        await service.forget(share, path, recursive=False)
        await request.app[PROPS].deleted(share, path, is_dir=False)
        return web.Response(status=204)
    if path.is_root:
        raise NotPermitted("the root of a share cannot be deleted")
    # 404 for nothing there and 423 for a lock not submitted, even where DELETE is refused:
    # what the resource is comes before what the share allows.
    entry = await share.stat(path)
    await service.check_write(request, share, path, recursive=True, etag=entry.etag)
    refuse(policy.may_delete(share.policy))
    if not entry.is_dir:
        await ops.delete_file(share, path, entry.size)
        await service.forget(share, path, recursive=False)
        await request.app[PROPS].deleted(share, path, is_dir=False)
        return web.Response(status=204)
    failures = await ops.delete_tree(share, path)
    await service.forget(share, path, recursive=True)
    # The collection's properties go with the request, its failed members' too: kept,
    # they would show on whatever is created at those names later.
    await request.app[PROPS].deleted(share, path, is_dir=True)
    return multistatus(share, failures) if failures else web.Response(status=204)

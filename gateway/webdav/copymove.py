"""COPY and MOVE inside one share (RFC 4918 sections 9.8 and 9.9).

COPY is a server-side copy into the target name. MOVE of something empty (a zero-byte
file, a collection holding at most its marker) writes the new name and deletes the old one:
no data moves, so it is always allowed. MOVE of data is a copy and a delete, not atomic,
and needs --allow-rename. The target follows the overwrite rules: replacing a file needs
--allow-overwrite (placeholders excepted), replacing a collection deletes it first and
needs --allow-delete. Members of a collection that fail are listed in a 207; a MOVE that
succeeded is 201/204, never 207. Dead properties follow COPY and MOVE; locks stay behind.
"""

from __future__ import annotations

from aiohttp import web

from gateway.errors import Conflict, NotPermitted, PreconditionFailed
from gateway.fs import ops, policy
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.storage.base import ObjectInfo
from gateway.webdav.deadprops import PROPS
from gateway.webdav.headers import PUBLIC_HOSTS, destination, overwrite, parse_depth
from gateway.webdav.lockservice import LOCKS
from gateway.webdav.multistatus import multistatus
from gateway.webdav.precheck import current_file, refuse


async def _source(share: Share, path: DavPath) -> ObjectInfo | None:
    """The source file's metadata, or None when the source is a collection (NotFound if
    nothing is there)."""
    if path.is_root:
        return None
    info = None if path.trailing_slash else await current_file(share, path)
    if info is None:
        await share.stat(path)  # NotFound unless it is a collection
    return info


async def _target(share: Share, path: DavPath) -> tuple[ObjectInfo | None, bool]:
    """(the file at the target, whether a collection is there)."""
    info = await current_file(share, path)
    if info is not None:
        return info, False
    return None, not share.is_noise(path) and await share.is_dir(path)


async def _transfer(request: web.Request, share: Share, src: DavPath, *, move: bool
                    ) -> web.StreamResponse:
    method = "MOVE" if move else "COPY"
    refuse(policy.may_write(share.policy))
    public = request.app.get(PUBLIC_HOSTS, frozenset())
    dst = destination(request.headers, share.mount_parts, public)
    replace = overwrite(request.headers)
    depths = ("infinity",) if move else ("0", "infinity")
    shallow = parse_depth(request.headers, method, depths) == "0"
    if src.parts == dst.parts:
        raise NotPermitted(f"{method}: the source and the destination are the same")
    if src.is_root:
        raise NotPermitted(f"{method}: the root of a share cannot be copied or moved")
    source = await _source(share, src)
    src_is_dir = source is None
    if src_is_dir and dst.is_inside(src):
        raise NotPermitted(f"{method}: a collection cannot be copied or moved into itself")
    if src.is_inside(dst):
        raise NotPermitted(f"{method}: the destination contains the source")
    if not await share.is_dir(dst.parent):
        raise Conflict(f"the parent collection {share.href(dst.parent)} does not exist")
    share.refuse_hidden(dst, is_dir=src_is_dir)
    target, target_is_dir = await _target(share, dst)
    exists = target is not None or target_is_dir
    if exists and not replace:
        raise PreconditionFailed(
            f"{share.href(dst, target_is_dir)} exists and the request says Overwrite: F"
        )

    service = request.app[LOCKS]
    tokens = await service.check_write(
        request, share, dst, recursive=True, etag=target.etag if target else None
    )
    if move:
        await service.check_write(
            request, share, src, recursive=True, etag=source.etag if source else None
        )
    if target is not None and not share.is_noise(dst):
        under_lock = bool(tokens) and await service.created_under_lock(share, dst, tokens)
        refuse(policy.may_overwrite(share.policy, target.size, under_lock))
    if target_is_dir:
        refuse(policy.may_replace_collection(share.policy))
    if move:
        if source is not None:
            empty = source.size == 0 or share.is_noise(src)
        else:
            empty = await ops.tree_is_empty(share, src)
        refuse(policy.may_rename(share.policy, src_is_dir, empty))

    # Clear the target when it is a collection, or a file about to become a collection.
    props = request.app[PROPS]
    if target_is_dir:
        failures = await ops.delete_tree(share, dst)
        if failures:
            return multistatus(share, failures)
        await props.deleted(share, dst, is_dir=True)
    elif target is not None and src_is_dir:
        await ops.delete_file(share, dst, target.size)
        await props.deleted(share, dst, is_dir=False)

    if source is not None:
        # A new name in default mode, or whenever the client said Overwrite: F: only if it
        # is still free when the copy commits.
        create_only = not exists and not (share.policy.allow_overwrite and replace)
        await ops.transfer_file(share, src, dst, source, move=move, create_only=create_only)
        failures = {}
    elif not move:
        failures, _ = await ops.copy_tree(share, src, dst, shallow=shallow)
    else:
        failures = await ops.move_tree(share, src, dst)
    # Dead properties follow the resource (the target's own are replaced); locks do not
    # move (RFC 4918 7.7).
    if move:
        await props.moved(share, src, dst, is_dir=src_is_dir)
        await service.forget(share, src, recursive=True)
    else:
        await props.copied(share, src, dst, is_dir=src_is_dir, shallow=shallow)
    if failures:
        return multistatus(share, failures)
    location = share.href(dst, is_dir=src_is_dir)
    return web.Response(status=204 if exists else 201, headers={"Location": location})


async def copy(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    return await _transfer(request, share, path, move=False)


async def move(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    return await _transfer(request, share, path, move=True)

"""Namespace writes: create, mkdir, delete, copy, move, as the front-ends need them.

These do the work; they do not decide what is allowed (that is ``policy``, applied by the
caller). Every write goes through the share's ``StoreView``, which keeps its caches true
(metadata, listings, negative entries), so the next PROPFIND, listing or GET through this
gateway sees it.

Client noise (``Share.is_noise``) is written to the share's noise area (on the state
store: every process sees it), never the store.
Collections are handled under their EXACT ``dir/`` prefix: ``dir2`` and ``dir-x`` are other
names, never touched. Tree operations are capped at ``MAX_TREE`` objects per request and
refuse before changing anything past it.

Key filters (``Share.filters``): a name the filters hide is never created (403, naming the
filter), and tree operations touch only visible keys; a collection's marker stays while a
hidden key lies below it. A share with a quota is told the bytes each write adds or frees.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass

from gateway.engine.upload import check_length, refuse_oversize
from gateway.errors import Conflict, GatewayError, NotFound, NotPermitted, Upstream
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.storage.base import ObjectInfo

MAX_TREE = 100_000  # objects one DELETE/COPY/MOVE of a collection may touch
DELETE_BATCH = 1000  # keys per DeleteObjects call
BATCHES_IN_FLIGHT = 4
COPIES_IN_FLIGHT = 8

Failures = dict[str, GatewayError]  # object key -> why it failed


class TooManyObjects(NotPermitted):
    """The collection is larger than one request may change; nothing was changed."""


@dataclass(frozen=True, slots=True)
class Tree:
    """Every object under a collection's exact prefix (its marker included)."""

    prefix: str
    objects: tuple[ObjectInfo, ...]  # the visible ones only
    hidden: tuple[str, ...] = ()  # keys the share's filters hide (never touched)

    @property
    def empty(self) -> bool:
        """Nothing but the collection's own marker: it can move without copying data."""
        return all(info.key == self.prefix for info in self.objects)


# ---- files ----------------------------------------------------------------------------


async def write_file(
    share: Share,
    path: DavPath,
    chunks: AsyncIterable[bytes],
    *,
    content_type: str | None = None,
    expected_size: int | None = None,
    create_only: bool = False,
    replaces: int = 0,
    mtime: float | None = None,
) -> ObjectInfo:
    """Create or replace the file at ``path`` from a stream; visible only when complete.

    An announced length the store, the memory budget or the share's quota cannot take is
    refused before the first chunk is asked for (so before ``100 Continue``), client noise
    included. ``replaces``: the size of the object it replaces (for the quota). ``mtime``:
    the modification time to store with it (``gateway.storage.mtime``)."""
    refuse_oversize(expected_size)
    if share.is_noise(path):
        return await _hold(share, path, chunks, content_type, expected_size)
    share.refuse_hidden(path, is_dir=False)
    if share.quota is not None:
        share.quota.refusal(expected_size, replaces)
    written = await share.view.write_stream(
        share.key(path),
        chunks,
        content_type=content_type,
        expected_size=expected_size,
        create_only=create_only,
        mtime=mtime,
    )
    _account(share, written.size - replaces)
    return written


def _account(share: Share, delta: int) -> None:
    """Tell the share's quota (if any) the bytes a write added (or freed, if negative)."""
    if share.quota is not None:
        share.quota.add(delta)


async def _hold(
    share: Share,
    path: DavPath,
    chunks: AsyncIterable[bytes],
    content_type: str | None,
    expected_size: int | None,
) -> ObjectInfo:
    """Read a client-noise body into the noise area (past ``max_body``: hash, then drop)."""
    digest = hashlib.md5(usedforsecurity=False)
    kept: list[bytes] | None = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        check_length(size, expected_size, ended=False)
        digest.update(chunk)
        if kept is not None:
            kept.append(chunk)
            if size > share.noise.max_body:
                kept = None
    check_length(size, expected_size, ended=True)
    data = b"".join(kept) if kept is not None else None
    return await share.noise.keep(share.key(path), data, size, f'"{digest.hexdigest()}"',
                                  content_type)


async def delete_file(share: Share, path: DavPath, size: int = 0) -> None:
    """Delete one file; ``size``: its bytes, for the share's quota."""
    if share.is_noise(path):
        if not await share.noise.drop(share.key(path)):
            raise NotFound(f"{share.href(path)} does not exist")
        return
    await share.view.delete(share.key(path))
    _account(share, -size)


async def _read_small(share: Share, info: ObjectInfo, limit: int) -> bytes | None:
    """The whole object if it is at most ``limit`` bytes, else None."""
    if info.size > limit:
        return None
    read = await share.view.open(info.key, info)
    try:
        return b"".join([chunk async for chunk in read.iter_range(0, info.size)])
    finally:
        await read.aclose()


async def transfer_file(
    share: Share, src: DavPath, dst: DavPath, info: ObjectInfo, *, move: bool,
    create_only: bool = False,
) -> ObjectInfo:
    """COPY (``move=False``) or MOVE one file; ``info`` describes the source.

    Store to store is a server-side copy (an empty file is written anew: no data moves);
    the noise area is involved when either name is client noise. ``create_only``: the
    target must still be absent when the copy commits (Exists, and a MOVE keeps its source).
    """
    src_noise, dst_noise = share.is_noise(src), share.is_noise(dst)
    dst_key = share.key(dst)
    share.refuse_hidden(dst, is_dir=False)
    if src_noise and dst_noise and move:  # one step in the state store, whoever else looks
        moved = await share.noise.move(share.key(src), dst_key)
        if moved is None:
            raise NotFound(f"{share.href(src)} does not exist")
        return moved
    if not src_noise and not dst_noise:
        if info.size == 0:
            result = await share.view.put(dst_key, b"", info.content_type,
                                          create_only=create_only)
        else:
            result = await share.view.copy(info.key, dst_key, create_only=create_only)
    else:
        if src_noise:
            held = await share.noise_file(src)
            data = held.data if held is not None else None
        else:
            data = await _read_small(share, info, share.noise.max_body)
        if dst_noise:
            result = await share.noise.keep(dst_key, data, info.size, info.etag,
                                            info.content_type)
        else:
            if data is None:
                raise Conflict(
                    f"{share.href(src)} is client metadata whose body was not kept; "
                    "it cannot be copied into the share"
                )
            result = await share.view.put(dst_key, data, info.content_type,
                                          create_only=create_only)
    if move:
        await delete_file(share, src)
        if src_noise and not dst_noise:
            _account(share, info.size)
    elif not dst_noise:
        _account(share, info.size)
    return result


# ---- collections ----------------------------------------------------------------------


async def mkdir(share: Share, path: DavPath, *, create_only: bool = False) -> ObjectInfo:
    """Write the collection's ``dir/`` marker object; ``create_only``: only if no marker
    is there when it commits (Exists otherwise)."""
    share.refuse_hidden(path, is_dir=True)
    return await share.view.put(share.dir_prefix(path), b"", create_only=create_only)


async def list_tree(share: Share, path: DavPath, cap: int | None = None) -> Tree:
    """Every object under the exact ``dir/`` prefix, fresh from the store (no cache);
    the ones the share's filters hide apart."""
    cap = MAX_TREE if cap is None else cap
    prefix = share.dir_prefix(path)
    objects: list[ObjectInfo] = []
    hidden: list[str] = []
    async for page in share.view.tree_pages(prefix):
        for info in page.objects:
            if share.key_visible(info.key):
                objects.append(info)
            else:
                hidden.append(info.key)
        if len(objects) + len(hidden) > cap:
            raise TooManyObjects(
                f"{share.href(path, is_dir=True)} holds more than {cap:,} objects, more than "
                "one request may change; nothing was changed (work on its sub-collections)"
            )
    return Tree(prefix, tuple(objects), tuple(hidden))


async def tree_is_empty(share: Share, path: DavPath) -> bool:
    """True if nothing but the collection's own marker lies under its prefix."""
    if share.filters.active:  # hidden keys do not count: look at every key
        return (await list_tree(share, path)).empty
    prefix = share.dir_prefix(path)
    page = await share.view.list_tree_page(prefix, None, 2)
    return all(info.key == prefix for info in page.objects)


def _removable(tree: Tree, keys: list[str]) -> list[str]:
    """``keys`` without the markers a hidden key lies below: a hidden key is never
    deleted, and its directory stays as it is."""
    if not tree.hidden:
        return keys
    above: set[str] = set()  # every directory a hidden key lies in: O(keys x depth)
    for key in tree.hidden:
        cut = key.rfind("/", 0, len(key) - 1)
        while cut >= 0:
            above.add(key[: cut + 1])
            cut = key.rfind("/", 0, cut)
        if key.endswith("/"):
            above.add(key)
    return [k for k in keys if not k.endswith("/") or k not in above]


async def _bounded(limit: int, jobs: list[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(run(job) for job in jobs))


async def delete_keys(share: Share, keys: list[str]) -> Failures:
    """Batched DeleteObjects: objects first (concurrently), then markers deepest first,
    so a local folder can remove each directory once it is empty."""
    failed: Failures = {}
    markers = sorted((k for k in keys if k.endswith("/")), reverse=True)
    objects = [k for k in keys if not k.endswith("/")]

    def batch_job(batch: list[str]) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            try:
                refused = await share.view.delete_many(batch)
            except GatewayError as exc:
                failed.update(dict.fromkeys(batch, exc))
                return
            for key, reason in refused.items():
                failed[key] = Upstream(f"the store did not delete it: {reason}")

        return job

    def batches(ks: list[str]) -> list[list[str]]:
        return [ks[i : i + DELETE_BATCH] for i in range(0, len(ks), DELETE_BATCH)]

    await _bounded(BATCHES_IN_FLIGHT, [batch_job(b) for b in batches(objects)])
    for batch in batches(markers):
        await batch_job(batch)()
    return failed


async def delete_tree(share: Share, path: DavPath, tree: Tree | None = None) -> Failures:
    """Delete every object under the collection's exact prefix; returns what failed."""
    tree = tree or await list_tree(share, path)
    keys = _removable(tree, [info.key for info in tree.objects])
    failed = await delete_keys(share, keys)
    share.view.invalidate(share.dir_prefix(path))
    sizes = {info.key: info.size for info in tree.objects}
    _account(share, -sum(sizes[k] for k in keys if k not in failed))
    return failed


async def copy_tree(
    share: Share, src: DavPath, dst: DavPath, tree: Tree | None = None, *, shallow: bool = False
) -> tuple[Failures, list[str]]:
    """Copy every object under ``src/`` to the same name under ``dst/`` (markers too).

    ``shallow`` (COPY with Depth 0): only the collection itself, as a marker. Returns the
    failures and the source keys that were copied.
    """
    dst_prefix = share.dir_prefix(dst)
    if shallow:
        await mkdir(share, dst)
        return {}, []
    tree = tree or await list_tree(share, src)
    failed: Failures = {}
    copied: list[str] = []

    def copy_job(info: ObjectInfo) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            target = dst_prefix + info.key[len(tree.prefix) :]
            if not share.key_visible(target):
                failed[info.key] = NotPermitted(
                    f"its copy {target[len(share.prefix):]} would be hidden by the share's "
                    "filters")
                return
            try:
                if info.size == 0:  # markers and empty files: no data to copy
                    await share.view.put(target, b"", info.content_type)
                else:
                    await share.view.copy(info.key, target)
            except GatewayError as exc:
                failed[info.key] = exc
                return
            copied.append(info.key)

        return job

    await _bounded(COPIES_IN_FLIGHT, [copy_job(info) for info in tree.objects])
    sizes = {info.key: info.size for info in tree.objects}
    _account(share, sum(sizes[k] for k in copied))
    return failed, copied


async def move_tree(share: Share, src: DavPath, dst: DavPath, tree: Tree | None = None
                    ) -> Failures:
    """MOVE a collection: copy every object, then delete the sources that were copied.

    Not atomic; what failed to copy stays at the source (and is reported)."""
    tree = tree or await list_tree(share, src)
    failed, copied = await copy_tree(share, src, dst, tree)
    removable = _removable(tree, copied)
    sizes = {info.key: info.size for info in tree.objects}
    _account(share, -sum(sizes[k] for k in copied))  # copy_tree counted them once more
    deleted = await delete_keys(share, removable)
    _account(share, sum(sizes[k] for k in deleted))  # still there after all
    failed.update(deleted)
    share.view.invalidate(share.dir_prefix(src))
    return failed

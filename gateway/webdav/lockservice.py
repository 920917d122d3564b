"""The LockService: WebDAV write locks on the shared state store, and the If-header check
every writing method makes.

Locks live in the app's ``StateStore`` (``--state``): in this process's memory, or in Redis
where every process and replica sharing it sees the same locks; the store grants a lock,
checking conflicts and caps, in one atomic step. A lock's scope and root are the share's
``state_scope`` (its store) and the full object key of what is locked
(``Share.state_path``), so one service serves every share and every prefix jail; replies
show each lock's root as the asking user's share shows it (``_root_href``): a jailed user
never sees the jail's key prefix. Locks are bounded (``LimitSettings``): the owner's size,
the locks covering one resource and held by one user, and the timeout, since every lock is
kept and repeated in each PROPFIND of what it covers. A state store that cannot be reached
makes LOCK, UNLOCK and every write check raise ``StateUnavailable`` (503); what only reads
(``discover``) shows no locks instead, so reads never depend on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from gateway.auth.principal import principal_of
from gateway.auth.users import ANONYMOUS
from gateway.errors import (
    BadRequest,
    InsufficientStorage,
    InvalidPath,
    Locked,
    NotPermitted,
    PreconditionFailed,
    StateUnavailable,
)
from gateway.fs.paths import DavPath, decode_path, split_target
from gateway.fs.share import Share
from gateway.settings import LimitSettings
from gateway.state import (
    LockConflict,
    LockLimit,
    LockLimits,
    LockNotOwned,
    LockRecord,
    MemoryState,
    StateStore,
)
from gateway.webdav.ifheader import evaluate, parse_if, submitted_tokens

ROOT = DavPath(())


@dataclass(frozen=True, slots=True)
class ActiveLock:
    token: str
    root: str  # lockroot href (collections end in "/")
    exclusive: bool
    depth: str  # "0" or "infinity"
    owner: str  # the owner element's XML as the client sent it, or ""
    timeout: int  # seconds left


def _shared_with(lock: LockRecord, held: list[LockRecord]) -> bool:
    """A shared lock does not stop a writer that holds another shared lock on the same
    resources: shared means several principals may write (RFC 4918 section 6.2)."""
    if lock.exclusive:
        return False
    return any(
        not other.exclusive and (other.covers(lock.root) or lock.covers(other.root))
        for other in held
    )


class LockService:
    def __init__(self, state: StateStore | None = None, limits: LimitSettings | None = None):
        self.state: StateStore = state if state is not None else MemoryState()
        self.limits = limits if limits is not None else LimitSettings()
        self._count = 0  # live locks as last read, for the metric (read synchronously)
        self._counting: asyncio.Task[None] | None = None

    @property
    def max_timeout(self) -> int:
        return self.limits.max_lock_timeout

    # ---- reading ------------------------------------------------------------------
    def _root_href(self, share: Share, lock: LockRecord) -> str:
        """The lock's root as ``share`` shows it. Hrefs are always the asking user's view:
        a lock taken through another share or jail shows at its path in this one, and a
        lock above a jail (depth infinity on an ancestor) covers the whole view, so it
        shows as the view's root, never as the key prefix the user cannot see."""
        path = share.path_of(lock.root)
        if path is None or path.is_root:
            return share.href(ROOT)
        return share.href(path, is_dir=lock.is_dir)

    def active(self, share: Share, lock: LockRecord) -> ActiveLock:
        return ActiveLock(
            token=lock.token,
            root=self._root_href(share, lock),
            exclusive=lock.exclusive,
            depth=lock.depth,
            owner=lock.owner,
            timeout=lock.seconds_left(time.time()),
        )

    def count(self) -> int:
        """Live locks (every store, every process sharing the state store) as last read:
        the metric is read synchronously, so each read also starts a fresh count."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._count
        if self._counting is None or self._counting.done():
            self._counting = loop.create_task(self._recount())
        return self._count

    async def _recount(self) -> None:
        with contextlib.suppress(StateUnavailable):  # the last count stands meanwhile
            self._count = await self.state.count()

    async def _covering(self, share: Share, path: DavPath) -> list[LockRecord]:
        """Live locks on ``path`` and depth-infinity locks on its ancestors."""
        return await self.state.covering(share.state_scope, share.state_path(path))

    async def discover(self, share: Share, path: DavPath) -> list[ActiveLock]:
        """The locks that cover ``path`` (its lockdiscovery property); none while the
        state store is unavailable (a read never depends on it)."""
        try:
            held = await self._covering(share, path)
        except StateUnavailable:
            return []
        return [self.active(share, lock) for lock in held]

    async def nearby(self, share: Share, path: DavPath) -> list[LockRecord] | None:
        """The locks covering ``path`` or rooted under it, for a Depth 1 PROPFIND to pick
        each member's from (``covering_of``) in one call; None while the state store is
        unavailable."""
        scope, where = share.state_scope, share.state_path(path)
        try:
            return [*await self.state.covering(scope, where),
                    *await self.state.below(scope, where)]
        except StateUnavailable:
            return None

    def covering_of(self, share: Share, path: DavPath, locks: Iterable[LockRecord]
                    ) -> list[ActiveLock]:
        """Of ``locks`` (from ``nearby``), those covering ``path``."""
        where = share.state_path(path)
        return [self.active(share, lock) for lock in locks if lock.covers(where)]

    # ---- LOCK / UNLOCK --------------------------------------------------------------
    def grant_timeout(self, requested: int | None) -> int:
        """At least what was asked, up to the cap; None (or Infinite) gets the cap."""
        if requested is None or requested <= 0:
            return self.max_timeout
        return min(requested, self.max_timeout)

    def _cap_refusal(self, share: Share, path: DavPath, what: Literal["resource", "principal"],
                     held: int, principal: str) -> InsufficientStorage:
        if what == "principal":
            return InsufficientStorage(
                f"{principal} holds {held} locks, the most one user may hold "
                "(--max-locks-per-user): UNLOCK some or let them expire"
            )
        return InsufficientStorage(
            f"{share.href(path)} is covered by {held} locks, the most one resource "
            "may have (--max-locks-per-resource)"
        )

    async def _check_caps(
        self, share: Share, path: DavPath, *, exclusive: bool, owner: str, principal: str,
    ) -> None:
        """BadRequest (400) for an owner past ``--max-lock-owner``; InsufficientStorage
        (507) past ``--max-locks-per-resource`` counting the locks that cover the resource
        (its own and depth-infinity locks above it). An exclusive request on a locked
        resource is left to the conflict check (423); the per-user cap and the locks rooted
        at the resource are checked again by the state store, atomically with the grant."""
        limits = self.limits
        size = len(owner.encode("utf-8"))
        if size > limits.max_lock_owner:
            raise BadRequest(
                f"the LOCK owner element is {size} bytes; the most accepted is "
                f"{limits.max_lock_owner} (--max-lock-owner)"
            )
        # Inherited locks count: each shows in the resource's lockdiscovery, so stacking
        # depth-infinity locks on every ancestor must not get around the cap. No lock lies
        # below a new depth-infinity lock (that conflicts), so bounding the locks covering
        # the target bounds every resource under it too.
        here = await self._covering(share, path)
        if len(here) >= limits.max_locks_per_resource and not exclusive and all(
            not lock.exclusive for lock in here
        ):
            raise self._cap_refusal(share, path, "resource", len(here), principal)

    async def lock(
        self,
        share: Share,
        path: DavPath,
        *,
        is_dir: bool,
        exclusive: bool,
        depth: Literal["0", "infinity"],
        owner: str,
        timeout: int | None,  # noqa: ASYNC109 - a lock's Timeout (RFC 4918), not a deadline
        principal: str = ANONYMOUS,
    ) -> ActiveLock:
        """Take a new lock; raises Locked (423) on a conflicting lock, BadRequest (400) or
        InsufficientStorage (507) past a cap (``_check_caps``)."""
        await self._check_caps(share, path, exclusive=exclusive, owner=owner,
                               principal=principal)
        try:
            lock = await self.state.acquire(
                share.state_scope,
                share.state_path(path),
                exclusive=exclusive,
                depth=depth,
                owner=owner,
                principal=principal,
                timeout=self.grant_timeout(timeout),
                is_dir=is_dir,
                limits=LockLimits(
                    max_per_resource=self.limits.max_locks_per_resource,
                    max_per_principal=self.limits.max_locks_per_user,
                ),
            )
        except LockConflict:
            # Not the conflict's own message: it names the lock's full key.
            raise Locked(f"{share.href(path, is_dir)} is locked by another lock") from None
        except LockLimit as exc:
            raise self._cap_refusal(share, path, exc.what, exc.held, principal) from None
        await self._recount()
        return self.active(share, lock)

    async def refresh(
        self,
        share: Share,
        path: DavPath,
        tokens: set[str],
        timeout: int | None,  # noqa: ASYNC109 - a lock's Timeout (RFC 4918), not a deadline
        principal: str = ANONYMOUS,
    ) -> list[ActiveLock]:
        """Refresh the locks of ``principal`` among ``tokens`` that cover ``path``; raises
        PreconditionFailed (412) when none does."""
        refreshed = []
        for lock in await self._covering(share, path):
            if lock.token in tokens and lock.principal == principal:
                again = await self.state.refresh(lock.token, self.grant_timeout(timeout))
                if again is not None:
                    refreshed.append(again)
        if not refreshed:
            raise PreconditionFailed(
                f"no lock token in the If header names a lock on {share.href(path)}"
            )
        return [self.active(share, lock) for lock in refreshed]

    async def unlock(
        self, share: Share, path: DavPath, token: str, principal: str = ANONYMOUS
    ) -> bool:
        """Release ``token`` if it names a lock covering ``path``; False otherwise.
        Another user's lock is NotPermitted (403)."""
        lock = await self.state.get(token)
        if lock is None or lock.scope != share.state_scope or not lock.covers(
            share.state_path(path)
        ):
            return False
        try:
            released = await self.state.release(token, principal)
        except LockNotOwned:
            raise NotPermitted(f"the lock on {share.href(path)} belongs to another user"
                               ) from None
        await self._recount()
        return released

    # ---- the contract with the writing methods -------------------------------------
    async def check_if(
        self, request: web.Request, share: Share, path: DavPath, etag: str | None
    ) -> set[str]:
        """Evaluate the If header for ``path`` (412 when false, 400 when malformed);
        returns the lock tokens it submits."""
        header = request.headers.get("If")
        if header is None:
            return set()
        lists = parse_if(header)
        held = {lock.token for lock in await self._covering(share, path)}
        target = (*share.mount_parts, *path.parts)
        try:
            request_parts = decode_path(split_target(request.raw_path)[0]).parts
        except InvalidPath:  # cannot happen: dispatch decoded this path already
            request_parts = target
        if not evaluate(
            lists,
            target,
            is_request_target=request_parts == target,
            holds=held.__contains__,
            etag=etag,
        ):
            raise PreconditionFailed(f"the If header's conditions fail for {share.href(path)}")
        return submitted_tokens(lists)

    async def check_write(
        self,
        request: web.Request,
        share: Share,
        path: DavPath,
        *,
        recursive: bool = False,
        etag: str | None = None,
    ) -> set[str]:
        """Evaluate the If header (412) then every lock covering ``path`` — on it,
        depth-infinity on its ancestors and, with ``recursive``, anything below it — whose
        token must have been submitted (423). Returns the submitted tokens of the locks
        that cover ``path``. ``StateUnavailable`` (503) when the locks cannot be read: a
        write is never let through unchecked."""
        submitted = await self.check_if(request, share, path, etag)
        where = share.state_path(path)
        locks = await self._covering(share, path)
        if recursive:
            locks += await self.state.below(share.state_scope, where)
        principal = principal_of(request)
        held = [lock for lock in locks if lock.token in submitted and lock.principal == principal]
        blocking = sorted(
            {
                self._root_href(share, lock)
                for lock in locks
                if lock not in held and not _shared_with(lock, held)
            }
        )
        if blocking:
            raise Locked(
                f"{share.href(path)} is locked (lock on {', '.join(blocking)}); "
                "send the lock token in an If header"
            )
        return {lock.token for lock in locks if lock.covers(where)} & submitted

    async def created_under_lock(self, share: Share, path: DavPath, tokens: set[str]) -> bool:
        """True if ``path`` was created under one of the live locks ``tokens`` name (the
        placeholder rule: it may be rewritten with the token until UNLOCK)."""
        where = share.state_path(path)
        for token in tokens:
            lock = await self.state.get(token)
            if lock is not None and lock.scope == share.state_scope and where in lock.created:
                return True
        return False

    async def note_created(self, share: Share, path: DavPath, tokens: set[str]) -> None:
        for token in tokens:
            await self.state.note_created(token, share.state_path(path))

    async def forget(self, share: Share, path: DavPath, *, recursive: bool) -> None:
        """``path`` is gone (DELETE, MOVE's source; locks do not move with a MOVE, RFC 4918
        section 7.7): its locks and what was created under any lock there are dropped."""
        if await self.state.drop(share.state_scope, share.state_path(path),
                                 recursive=recursive):
            await self._recount()


LOCKS = web.AppKey("locks", LockService)

"""The LockService: WebDAV write locks on wsgidav's lock manager, and the If-header check
every writing method makes.

Lock roots are the store and full object key of what is locked (see ``lock_url``), so
one service serves every share and every prefix jail of the app; replies show each lock's
root as the asking user's share shows it (``_root_href``): a jailed user never sees the
jail's key prefix. Locks are bounded (``LimitSettings``): the owner's size, the locks on one
resource and held by one user, and the timeout, since every lock is kept in memory and
repeated in each PROPFIND of what it covers.
wsgidav's ``LockManager`` keeps the locks and decides LOCK conflicts (exclusive/shared,
depth-infinity ancestors and descendants); its storage is behind ``LockStorage`` so that
a shared storage (wsgidav's ``LockStorageRedis``) can replace the in-memory one for several
gateway processes. Note for that switch: the storage calls are synchronous (a Redis storage
would block the event loop: wrap them in a thread or use an async client), and the few
per-lock extras kept here in ``_extras``/``_created`` would have to live in the shared
storage too.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, unquote

from aiohttp import web
from wsgidav.dav_error import DAVError
from wsgidav.lock_man.lock_manager import LockManager, normalize_lock_root, validate_lock
from wsgidav.lock_man.lock_storage import LockStorageDict

from gateway.auth.principal import ANONYMOUS, principal_of
from gateway.errors import (
    BadRequest,
    InsufficientStorage,
    InvalidPath,
    Locked,
    NotPermitted,
    PreconditionFailed,
)
from gateway.fs.paths import DavPath, decode_path, split_target
from gateway.fs.share import Share
from gateway.settings import LimitSettings
from gateway.webdav.ifheader import evaluate, parse_if, submitted_tokens

ROOT = DavPath(())


class LockStorage(Protocol):
    """What wsgidav's LockManager needs from a storage (LockStorageDict, LockStorageRedis)."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def get(self, token: str) -> dict[str, Any] | None: ...
    def create(self, path: str, lock: dict[str, Any]) -> dict[str, Any]: ...
    def refresh(self, token: str, *, timeout: float) -> dict[str, Any]: ...
    def delete(self, token: str) -> bool: ...
    def get_lock_list(
        self, path: str, *, include_root: bool, include_children: bool, token_only: bool
    ) -> list[dict[str, Any]]: ...


class UrnLockStorage(LockStorageDict):  # type: ignore[misc]
    """wsgidav's in-memory storage, issuing ``urn:uuid:`` tokens (RFC 4918 section 6.5)
    instead of its ``opaquelocktoken:0x...`` hex strings."""

    def create(self, path: str, lock: dict[str, Any]) -> dict[str, Any]:
        self._lock.acquire_write()
        try:
            root = normalize_lock_root(path)
            timeout = float(lock["timeout"])
            if timeout < 0 or timeout > self.LOCK_TIME_OUT_MAX:
                timeout = self.LOCK_TIME_OUT_MAX
            lock.update(root=root, timeout=timeout, expire=time.time() + timeout)
            validate_lock(lock)
            token = f"urn:uuid:{uuid.uuid4()}"
            lock["token"] = token
            self._dict[token] = lock
            self._dict.setdefault(f"URL2TOKEN:{root}", []).append(token)
            return lock
        finally:
            self._lock.release()

    def get_lock_list(
        self, path: str, *, include_root: bool, include_children: bool, token_only: bool
    ) -> list[Any]:
        if include_children:
            # wsgidav purges an expired lock while iterating over its dict, which fails
            # ("dictionary changed size"): purge them first, from a snapshot.
            for key in [k for k in self._dict if not k.startswith("URL2TOKEN:")]:
                self.get(key)
        return list(
            super().get_lock_list(
                path,
                include_root=include_root,
                include_children=include_children,
                token_only=token_only,
            )
        )


@dataclass(frozen=True, slots=True)
class ActiveLock:
    token: str
    root: str  # lockroot href (collections end in "/")
    exclusive: bool
    depth: str  # "0" or "infinity"
    owner: str  # the owner element's XML as the client sent it, or ""
    timeout: int  # seconds left


@dataclass
class _Extras:
    is_dir: bool  # what the lock root named when it was taken (its href ends in "/")
    created: set[str] = field(default_factory=set)  # lock roots created under this lock


def lock_url(share: Share, path: DavPath) -> str:
    """The lock-manager URL of a path: its store and full key, not its href.

    Two users jailed to different prefixes of one share see the same hrefs for different
    objects, and two shares may serve the same keys: locks belong to what is locked.
    """
    store = quote(share.view.description, safe="")
    key = share.key(path) if path.parts else share.prefix.rstrip("/")
    return str(normalize_lock_root(f"/{store}/{quote(key, safe='/')}"))


def _covers(lock: dict[str, Any], url: str) -> bool:
    root = str(lock["root"])
    if root == url:
        return True
    return lock["depth"] == "infinity" and url.startswith(root.rstrip("/") + "/")


def _shared_with(lock: dict[str, Any], held: list[dict[str, Any]]) -> bool:
    """A shared lock does not stop a writer that holds another shared lock on the same
    resources: shared means several principals may write (RFC 4918 section 6.2)."""
    if lock["scope"] != "shared":
        return False
    root = str(lock["root"])
    return any(
        other["scope"] == "shared" and (_covers(other, root) or _covers(lock, str(other["root"])))
        for other in held
    )


class LockService:
    def __init__(self, limits: LimitSettings | None = None, storage: LockStorage | None = None):
        self.limits = limits if limits is not None else LimitSettings()
        self.manager = LockManager(storage if storage is not None else UrnLockStorage())
        self._extras: dict[str, _Extras] = {}  # by token

    @property
    def max_timeout(self) -> int:
        return self.limits.max_lock_timeout

    # ---- reading ------------------------------------------------------------------
    def _root_href(self, share: Share, lock: dict[str, Any]) -> str:
        """The lock's root as ``share`` shows it. Hrefs are always the asking user's view:
        a lock taken through another share or jail shows at its path in this one, and a
        lock above a jail (depth infinity on an ancestor) covers the whole view, so it
        shows as the view's root, never as the key prefix the user cannot see."""
        root = str(lock["root"])
        base = lock_url(share, ROOT).rstrip("/")
        if not root.startswith(base + "/"):
            return share.href(ROOT)
        extras = self._extras.get(str(lock["token"]))
        parts = tuple(unquote(root[len(base) + 1 :]).split("/"))
        return share.href(DavPath(parts), is_dir=extras is not None and extras.is_dir)

    def _active(self, lock: dict[str, Any], share: Share) -> ActiveLock:
        token = str(lock["token"])
        owner = lock["owner"]
        return ActiveLock(
            token=token,
            root=self._root_href(share, lock),
            exclusive=lock["scope"] == "exclusive",
            depth=str(lock["depth"]),
            owner=owner.decode("utf-8") if isinstance(owner, bytes) else str(owner),
            timeout=max(0, round(float(lock["expire"]) - time.time())),
        )

    def count(self) -> int:
        """Locks held now, on every store (expired ones are purged first)."""
        held = self.manager.storage.get_lock_list(
            "/", include_root=True, include_children=True, token_only=True
        )
        return len(held)

    def _covering(self, url: str) -> list[dict[str, Any]]:
        """Valid locks on ``url`` and depth-infinity locks on its ancestors."""
        return list(self.manager.get_indirect_url_lock_list(url))

    def discover(self, share: Share, path: DavPath) -> list[ActiveLock]:
        """The locks that cover ``path`` (its lockdiscovery property)."""
        return [self._active(lock, share) for lock in self._covering(lock_url(share, path))]

    # ---- LOCK / UNLOCK --------------------------------------------------------------
    def grant_timeout(self, requested: int | None) -> int:
        """At least what was asked, up to the cap; None (or Infinite) gets the cap."""
        if requested is None or requested <= 0:
            return self.max_timeout
        return min(requested, self.max_timeout)

    def _check_caps(
        self, share: Share, path: DavPath, url: str, *, exclusive: bool, owner: str,
        principal: str,
    ) -> None:
        """BadRequest (400) for an owner past ``--max-lock-owner``; InsufficientStorage
        (507) past ``--max-locks-per-user`` or ``--max-locks-per-resource`` (locks on the
        resource and depth-infinity locks above it). An exclusive request on a locked
        resource is left to the conflict check (423)."""
        limits = self.limits
        size = len(owner.encode("utf-8"))
        if size > limits.max_lock_owner:
            raise BadRequest(
                f"the LOCK owner element is {size} bytes; the most accepted is "
                f"{limits.max_lock_owner} (--max-lock-owner)"
            )
        every = self.manager.storage.get_lock_list(
            "/", include_root=True, include_children=True, token_only=False
        )
        held = sum(1 for lock in every if lock["principal"] == principal)
        if held >= limits.max_locks_per_user:
            raise InsufficientStorage(
                f"{principal} holds {held} locks, the most one user may hold "
                "(--max-locks-per-user): UNLOCK some or let them expire"
            )
        # Inherited locks count: each shows in the resource's lockdiscovery, so stacking
        # depth-infinity locks on every ancestor must not get around the cap. No lock lies
        # below a new depth-infinity lock (that conflicts), so bounding the locks covering
        # the target bounds every resource under it too.
        here = self._covering(url)
        if len(here) >= limits.max_locks_per_resource and not exclusive and all(
            lock["scope"] == "shared" for lock in here
        ):
            raise InsufficientStorage(
                f"{share.href(path)} is covered by {len(here)} locks, the most one resource "
                "may have (--max-locks-per-resource)"
            )

    def lock(
        self,
        share: Share,
        path: DavPath,
        *,
        is_dir: bool,
        exclusive: bool,
        depth: str,
        owner: str,
        timeout: int | None,
        principal: str = ANONYMOUS,
    ) -> ActiveLock:
        """Take a new lock; raises Locked (423) on a conflicting lock, BadRequest (400) or
        InsufficientStorage (507) past a cap (``_check_caps``)."""
        self._purge()
        url = lock_url(share, path)
        self._check_caps(share, path, url, exclusive=exclusive, owner=owner,
                         principal=principal)
        try:
            lock = self.manager.acquire(
                url=url,
                lock_type="write",
                lock_scope="exclusive" if exclusive else "shared",
                lock_depth=depth,
                lock_owner=owner.encode("utf-8"),
                timeout=self.grant_timeout(timeout),
                principal=principal,
                token_list=[],
            )
        except DAVError:
            raise Locked(f"{share.href(path, is_dir)} is locked by another lock") from None
        self._extras[str(lock["token"])] = _Extras(is_dir)
        return self._active(lock, share)

    def refresh(
        self,
        share: Share,
        path: DavPath,
        tokens: set[str],
        timeout: int | None,
        principal: str = ANONYMOUS,
    ) -> list[ActiveLock]:
        """Refresh the locks of ``principal`` among ``tokens`` that cover ``path``; raises
        PreconditionFailed (412) when none does."""
        url = lock_url(share, path)
        refreshed = [
            self.manager.refresh(lock["token"], timeout=self.grant_timeout(timeout))
            for lock in self._covering(url)
            if lock["token"] in tokens and lock["principal"] == principal
        ]
        if not refreshed:
            raise PreconditionFailed(
                f"no lock token in the If header names a lock on {share.href(path)}"
            )
        return [self._active(lock, share) for lock in refreshed]

    def unlock(
        self, share: Share, path: DavPath, token: str, principal: str = ANONYMOUS
    ) -> bool:
        """Release ``token`` if it names a lock covering ``path``; False otherwise.
        Another user's lock is NotPermitted (403)."""
        url = lock_url(share, path)
        lock = self.manager.get_lock(token)
        if lock is None or not _covers(lock, url):
            return False
        if lock["principal"] != principal:
            raise NotPermitted(f"the lock on {share.href(path)} belongs to another user")
        self.manager.release(token)
        self._extras.pop(token, None)
        return True

    def _purge(self) -> None:
        """Forget the extras of locks that expired (the storage purges them lazily)."""
        for token in [t for t in self._extras if self.manager.get_lock(t) is None]:
            del self._extras[token]

    # ---- the contract with the writing methods -------------------------------------
    def check_if(
        self, request: web.Request, share: Share, path: DavPath, etag: str | None
    ) -> set[str]:
        """Evaluate the If header for ``path`` (412 when false, 400 when malformed);
        returns the lock tokens it submits."""
        header = request.headers.get("If")
        if header is None:
            return set()
        lists = parse_if(header)
        url = lock_url(share, path)
        held = {str(lock["token"]) for lock in self._covering(url)}
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
        that cover ``path``."""
        submitted = self.check_if(request, share, path, etag)
        url = lock_url(share, path)
        locks = self._covering(url)
        if recursive:
            locks += self.manager.get_url_lock_list(url, recursive=True)
        principal = principal_of(request)
        held = [
            lock for lock in locks
            if lock["token"] in submitted and lock["principal"] == principal
        ]
        blocking = sorted(
            {
                self._root_href(share, k)
                for k in locks
                if k not in held and not _shared_with(k, held)
            }
        )
        if blocking:
            raise Locked(
                f"{share.href(path)} is locked (lock on {', '.join(blocking)}); "
                "send the lock token in an If header"
            )
        return {str(lock["token"]) for lock in locks if _covers(lock, url)} & submitted

    def created_under_lock(self, share: Share, path: DavPath, tokens: set[str]) -> bool:
        url = lock_url(share, path)
        for token in tokens:
            extras = self._extras.get(token)
            if extras and url in extras.created and self.manager.get_lock(token) is not None:
                return True
        return False

    def note_created(self, share: Share, path: DavPath, tokens: set[str]) -> None:
        url = lock_url(share, path)
        for token in tokens:
            extras = self._extras.get(token)
            if extras is not None:
                extras.created.add(url)

    def forget(self, share: Share, path: DavPath, *, recursive: bool) -> None:
        url = lock_url(share, path)
        self.manager.remove_all_locks_from_url(url, recursive=recursive)
        prefix = url.rstrip("/") + "/"
        for extras in self._extras.values():
            extras.created = {
                u for u in extras.created if u != url and not (recursive and u.startswith(prefix))
            }
        self._purge()

    def move(self, share: Share, src: DavPath, dst: DavPath) -> None:
        """Locks do not move with a MOVE (RFC 4918 section 7.7): the source's are dropped."""
        self.forget(share, src, recursive=True)


LOCKS = web.AppKey("locks", LockService)

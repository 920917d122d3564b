"""The StateStore protocol: what the gateway's processes share, and nothing more.

See the package docstring (``gateway.state``) for the model: scopes, paths, what each
part holds and how each backend keeps it. This module holds the protocol, its records, its
errors and the defaults of its bounds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol, runtime_checkable

from gateway.errors import InsufficientStorage, Locked, NotPermitted

log = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB

Depth = Literal["0", "infinity"]

# ---- records ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LockRecord:
    """One granted lock (RFC 4918 section 6).

    ``root`` is the locked resource's path inside the scope: names joined by ``/``, no
    leading or trailing slash, ``""`` for the scope's root. ``expires`` is in seconds since
    the epoch by the state store's clock (``seconds_left`` turns it into a Timeout).
    """

    token: str
    scope: str
    root: str
    depth: Depth
    exclusive: bool
    owner: str  # the <D:owner> element's XML exactly as the client sent it, or ""
    principal: str  # the user who took it
    timeout: float  # seconds granted by the last LOCK or refresh
    expires: float
    is_dir: bool = False  # what the root named when it was taken (for its href)
    created: frozenset[str] = frozenset()  # paths created under this lock (note_created)

    def covers(self, path: str) -> bool:
        """True if the lock applies to ``path``: its root, or below it at depth infinity."""
        return self.root == path or (self.depth == "infinity" and is_below(path, self.root))

    def seconds_left(self, now: float) -> int:
        """The Timeout to show at ``now`` (seconds since the epoch), never negative."""
        return max(0, round(self.expires - now))


@dataclass(frozen=True, slots=True)
class LockLimits:
    """Caps checked by ``acquire`` in the same atomic step as the conflicts."""

    max_per_resource: int = 8  # locks whose root is one path (shared locks)
    max_per_principal: int = 1000  # live locks of one user, across every scope


@dataclass(frozen=True, slots=True)
class NoiseFile:
    """A client-noise file held in the noise area (``._name``, ``.DS_Store``...)."""

    key: str
    size: int
    etag: str  # quoted, like a store's
    last_modified: datetime  # timezone-aware UTC, whole seconds
    content_type: str | None
    data: bytes | None  # None: the body was larger than max_body (metadata only)


@dataclass(frozen=True, slots=True)
class NoiseLimits:
    """The noise area's bounds: today's in-process semantics (gateway.fs.noise)."""

    ttl: float = 600.0  # seconds an entry is kept after its last put or move
    max_bytes: int = 16 * MiB  # per scope, each entry charged ENTRY_OVERHEAD + its body
    max_body: int = 1 * MiB  # larger bodies are dropped, their metadata kept

    def body(self, data: bytes | None) -> bytes | None:
        """What is kept of a body: ``data``, or None past ``max_body``."""
        return None if data is not None and len(data) > self.max_body else data


def noise_time() -> datetime:
    """The modification time of a noise file put or moved now (``NoiseFile.last_modified``)."""
    return datetime.now(UTC).replace(microsecond=0)


LOCK_LIMITS = LockLimits()
NOISE_LIMITS = NoiseLimits()
ENTRY_OVERHEAD = 512  # bytes charged per noise entry: the byte cap also caps the count
PROPS_MAX_BYTES = 64 * KiB  # default cap on one resource's dead properties
GUARD_TTL = 30.0  # seconds a write guard outlives a holder that died
GUARD_WAIT = 10.0  # seconds a second caller waits for a guard before Busy


@dataclass(frozen=True, slots=True)
class Invalidation:
    """One invalidation event: ``key`` in ``scope`` changed (with ``prefix``: every key
    starting with ``key``). ``EVERYTHING`` (empty scope) means events may have been missed:
    drop every cached entry."""

    scope: str
    key: str
    prefix: bool = False

    @property
    def everything(self) -> bool:
        return self.scope == "" and self.prefix


EVERYTHING = Invalidation("", "", prefix=True)


class Subscribers:
    """The invalidation callbacks of one process, as ``StateStore.subscribe`` keeps them."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[Invalidation], None]] = []

    def add(self, callback: Callable[[Invalidation], None]) -> Callable[[], None]:
        """Add ``callback``; returns the function that removes it."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def deliver(self, event: Invalidation) -> None:
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:  # one subscriber's bug must not stop the others' events
                log.exception("invalidation subscriber failed")

    def clear(self) -> None:
        self._callbacks.clear()

# ---- errors (statuses through gateway.errors.STATUS, by their base classes) -------------


class LockConflict(Locked):
    """423: a lock held by someone else conflicts; ``root`` is that lock's root path."""

    def __init__(self, root: str, message: str | None = None) -> None:
        super().__init__(message or f"locked by a lock on /{root}")
        self.root = root


class LockLimit(InsufficientStorage):
    """507: a lock cap (``LockLimits``) would be passed. ``what`` is ``"resource"`` or
    ``"principal"``; ``held`` is how many locks are there already."""

    def __init__(self, what: Literal["resource", "principal"], held: int) -> None:
        whose = "this resource has" if what == "resource" else "this user holds"
        super().__init__(f"{whose} {held} locks, the most allowed")
        self.what = what
        self.held = held


class LockNotOwned(NotPermitted):
    """403: the lock belongs to another principal."""

    default_message = "the lock belongs to another user"


class PropsLimit(InsufficientStorage):
    """507: the resource's dead properties would pass the byte cap."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the dead properties would take {size} bytes; the most kept per resource is "
            f"{limit}"
        )
        self.size = size
        self.limit = limit


class Busy(Locked):
    """423: another process holds the write guard of this name past the wait."""

    default_message = "another client is writing this name; try again"


# ---- paths -----------------------------------------------------------------------------


def is_below(path: str, root: str) -> bool:
    """True if ``path`` is strictly under ``root`` (``""`` is the scope's root)."""
    if root == "":
        return path != ""
    return path.startswith(root + "/")


def ancestors(path: str) -> list[str]:
    """The proper ancestors of ``path``, root first: ``"a/b/c"`` -> ``["", "a", "a/b"]``."""
    if path == "":
        return []
    parts = path.split("/")
    return ["", *("/".join(parts[:i]) for i in range(1, len(parts)))]


def check_path(path: str) -> str:
    """``path`` if it has the documented form (no leading/trailing ``/``, no NUL)."""
    if path.startswith("/") or path.endswith("/") or "\x00" in path or "//" in path:
        raise ValueError(f"state path {path!r}: names joined by '/', no leading or trailing '/'")
    return path


def props_size(props: Mapping[str, str]) -> int:
    """What a resource's dead properties count against their cap: names plus values,
    in UTF-8 bytes."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in props.items())


# ---- the protocol ----------------------------------------------------------------------


@runtime_checkable
class StateStore(Protocol):
    """Locks, dead properties, the noise area, write guards and invalidation events.

    Every operation is a coroutine that either completes or raises a domain error; a
    shared backend that cannot be reached raises ``StateUnavailable`` within a short
    timeout instead of hanging.
    """

    @property
    def description(self) -> str:
        """For messages: ``memory`` or the URL without its password."""
        ...

    @property
    def available(self) -> bool:
        """False while the backend is known to be unreachable (it reconnects by itself)."""
        ...

    async def ping(self) -> None:
        """Raise ``StateUnavailable`` if the backend cannot be reached now."""
        ...

    async def healthy(self) -> bool:
        """``ping`` as a boolean, for /readyz."""
        ...

    async def close(self) -> None: ...

    # ---- locks --------------------------------------------------------------------
    async def acquire(
        self,
        scope: str,
        root: str,
        *,
        exclusive: bool,
        depth: Depth,
        owner: str,
        principal: str,
        timeout: float,  # noqa: ASYNC109 - a lock's Timeout (RFC 4918), not a deadline
        is_dir: bool = False,
        limits: LockLimits = LOCK_LIMITS,
    ) -> LockRecord:
        """Grant a new lock in one atomic step, or raise ``LockConflict`` (a lock on an
        ancestor at depth infinity, on ``root`` itself, or — for a depth-infinity request —
        below it, unless both are shared) or ``LockLimit`` (conflicts are checked first)."""
        ...

    async def refresh(self, token: str, timeout: float) -> LockRecord | None:  # noqa: ASYNC109
        """Restart a live lock's timeout; None if there is no such live lock."""
        ...

    async def release(self, token: str, principal: str) -> bool:
        """Remove a lock; False if there is no such live lock, ``LockNotOwned`` if it is
        another principal's."""
        ...

    async def get(self, token: str) -> LockRecord | None: ...

    async def covering(self, scope: str, path: str) -> list[LockRecord]:
        """Live locks that cover ``path``: rooted at it, or at an ancestor with depth
        infinity."""
        ...

    async def below(self, scope: str, path: str) -> list[LockRecord]:
        """Live locks rooted strictly under ``path``."""
        ...

    async def drop(self, scope: str, path: str, *, recursive: bool) -> int:
        """The resource at ``path`` is gone (DELETE, MOVE's source): remove the locks
        rooted at it (and below it with ``recursive``) and forget it (and what is below
        it) in every lock's ``created``. Returns how many locks were removed."""
        ...

    async def note_created(self, token: str, path: str) -> bool:
        """Record that ``path`` was created under the lock; False if it is not live."""
        ...

    async def count(self) -> int:
        """Live locks in every scope."""
        ...

    # ---- dead properties ----------------------------------------------------------
    async def props_get(self, scope: str, key: str) -> dict[str, str]:
        """``{"{ns}name": xml}`` of the resource; empty when it has none."""
        ...

    async def props_get_many(self, scope: str, keys: Sequence[str]) -> list[dict[str, str]]:
        """``props_get`` of each key, in order, in one call (a PROPFIND reads a listing
        page's members at once)."""
        ...

    async def props_patch(
        self,
        scope: str,
        key: str,
        set: Mapping[str, str],
        remove: Iterable[str],
        *,
        max_bytes: int = PROPS_MAX_BYTES,
    ) -> dict[str, str]:
        """Remove then set, all or nothing; ``PropsLimit`` if names plus values (UTF-8)
        would pass ``max_bytes``. Returns the properties after the patch."""
        ...

    async def props_copy(self, scope: str, src: str, dst: str) -> None:
        """``dst``'s properties become a copy of ``src``'s (none if it has none)."""
        ...

    async def props_move(self, scope: str, src: str, dst: str) -> None: ...

    async def props_delete(self, scope: str, key: str) -> None: ...

    async def props_copy_prefix(self, scope: str, src: str, dst: str) -> int:
        """Every key under ``dst`` (starting with it) loses its properties, then every key
        ``src + rest`` gives a copy of its own to ``dst + rest``. Returns keys copied."""
        ...

    async def props_move_prefix(self, scope: str, src: str, dst: str) -> int: ...

    async def props_delete_prefix(self, scope: str, prefix: str) -> int: ...

    # ---- the client-noise area ----------------------------------------------------
    async def noise_put(
        self,
        scope: str,
        key: str,
        data: bytes | None,
        *,
        size: int,
        etag: str,
        content_type: str | None = None,
        limits: NoiseLimits = NOISE_LIMITS,
    ) -> NoiseFile:
        """Keep a file (replacing one of that key); the oldest entries of the scope go
        when ``max_bytes`` would be passed."""
        ...

    async def noise_get(self, scope: str, key: str) -> NoiseFile | None: ...

    async def noise_drop(self, scope: str, key: str) -> bool: ...

    async def noise_move(
        self,
        scope: str,
        src: str,
        dst: str,
        *,
        limits: NoiseLimits = NOISE_LIMITS,
    ) -> NoiseFile | None:
        """Rename a held file (a fresh TTL and modification time); None if not held."""
        ...

    async def noise_count(self, scope: str) -> int: ...

    # ---- write guards -------------------------------------------------------------
    def guard(
        self, scope: str, key: str, *, ttl: float = GUARD_TTL, wait: float = GUARD_WAIT
    ) -> AbstractAsyncContextManager[None]:
        """Held by one caller at a time across processes. A second caller waits up to
        ``wait`` seconds for it, then gets ``Busy``; a guard whose holder died frees
        itself after ``ttl`` seconds."""
        ...

    # ---- invalidation events ------------------------------------------------------
    async def publish(self, scope: str, key: str, *, prefix: bool = False) -> None: ...

    def subscribe(self, callback: Callable[[Invalidation], None]) -> Callable[[], None]:
        """Call ``callback`` for every event any process publishes (this one's too);
        returns the function that unsubscribes."""
        ...

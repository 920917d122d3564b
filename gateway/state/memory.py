"""The in-process state store: the default, for one process.

Every operation runs without awaiting in between, so on one event loop each is atomic as
the protocol asks. Locks, properties and noise files last for the process's life.
"""

from __future__ import annotations

import asyncio
import heapq
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field, replace

from gateway.state.base import (
    ENTRY_OVERHEAD,
    GUARD_TTL,
    GUARD_WAIT,
    LOCK_LIMITS,
    NOISE_LIMITS,
    PROPS_MAX_BYTES,
    Busy,
    Depth,
    Invalidation,
    LockConflict,
    LockLimit,
    LockLimits,
    LockNotOwned,
    LockRecord,
    NoiseFile,
    NoiseLimits,
    PropsLimit,
    Subscribers,
    ancestors,
    check_path,
    is_below,
    noise_time,
    props_size,
)


@dataclass
class _Noise:
    file: NoiseFile
    charge: int
    expires: float  # time.monotonic()


@dataclass
class _Guard:
    token: str
    expires: float  # time.monotonic()
    freed: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryState:
    """``StateStore`` in this process's memory."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # wall clock: LockRecord.expires is in seconds since the epoch
        self._locks: dict[str, LockRecord] = {}  # by token
        self._roots: dict[str, dict[str, set[str]]] = {}  # scope -> root -> tokens
        self._expiry: list[tuple[float, str]] = []  # heap of (expires, token), lazily stale
        self._held: Counter[str] = Counter()  # live locks by principal
        self._props: dict[str, dict[str, dict[str, str]]] = {}  # scope -> key -> props
        self._noise: dict[str, OrderedDict[str, _Noise]] = {}  # scope -> key -> entry
        self._noise_bytes: dict[str, int] = {}
        self._guards: dict[tuple[str, str], _Guard] = {}
        self._subscribers = Subscribers()

    @property
    def description(self) -> str:
        return "memory"

    @property
    def available(self) -> bool:
        return True

    async def ping(self) -> None:
        return None

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        self._subscribers.clear()

    # ---- locks --------------------------------------------------------------------
    def _prune(self) -> None:
        now = self._clock()
        while self._expiry and self._expiry[0][0] <= now:
            _, token = heapq.heappop(self._expiry)
            lock = self._locks.get(token)
            if lock is not None and lock.expires <= now:  # not refreshed since
                self._remove(lock)

    def _remove(self, lock: LockRecord) -> None:
        del self._locks[lock.token]
        self._held[lock.principal] -= 1
        if not self._held[lock.principal]:
            del self._held[lock.principal]
        roots = self._roots[lock.scope]
        tokens = roots[lock.root]
        tokens.discard(lock.token)
        if not tokens:
            del roots[lock.root]
            if not roots:
                del self._roots[lock.scope]

    def _at(self, scope: str, root: str) -> list[LockRecord]:
        tokens = self._roots.get(scope, {}).get(root, ())
        return [self._locks[t] for t in tokens]

    def _under(self, scope: str, path: str) -> list[LockRecord]:
        roots = self._roots.get(scope, {})
        return [self._locks[t] for r, ts in roots.items() if is_below(r, path) for t in ts]

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
        check_path(root)
        self._prune()
        for path in ancestors(root):
            for lock in self._at(scope, path):
                if lock.depth == "infinity" and (exclusive or lock.exclusive):
                    raise LockConflict(lock.root)
        here = self._at(scope, root)
        for lock in here:
            if exclusive or lock.exclusive:
                raise LockConflict(lock.root)
        if depth == "infinity":
            for lock in self._under(scope, root):
                if exclusive or lock.exclusive:
                    raise LockConflict(lock.root)
        if len(here) >= limits.max_per_resource:
            raise LockLimit("resource", len(here))
        held = self._held[principal]
        if held >= limits.max_per_principal:
            raise LockLimit("principal", held)
        lock = LockRecord(
            token=f"urn:uuid:{uuid.uuid4()}",
            scope=scope,
            root=root,
            depth=depth,
            exclusive=exclusive,
            owner=owner,
            principal=principal,
            timeout=timeout,
            expires=self._clock() + timeout,
            is_dir=is_dir,
        )
        self._put(lock)
        self._held[principal] += 1
        self._roots.setdefault(scope, {}).setdefault(root, set()).add(lock.token)
        return lock

    def _put(self, lock: LockRecord) -> None:
        self._locks[lock.token] = lock
        heapq.heappush(self._expiry, (lock.expires, lock.token))

    async def refresh(self, token: str, timeout: float) -> LockRecord | None:  # noqa: ASYNC109
        self._prune()
        lock = self._locks.get(token)
        if lock is None:
            return None
        lock = replace(lock, timeout=timeout, expires=self._clock() + timeout)
        self._put(lock)
        return lock

    async def release(self, token: str, principal: str) -> bool:
        self._prune()
        lock = self._locks.get(token)
        if lock is None:
            return False
        if lock.principal != principal:
            raise LockNotOwned()
        self._remove(lock)
        return True

    async def get(self, token: str) -> LockRecord | None:
        self._prune()
        return self._locks.get(token)

    async def covering(self, scope: str, path: str) -> list[LockRecord]:
        self._prune()
        found = [
            lock
            for above in ancestors(path)
            for lock in self._at(scope, above)
            if lock.depth == "infinity"
        ]
        return found + self._at(scope, path)

    async def below(self, scope: str, path: str) -> list[LockRecord]:
        self._prune()
        return self._under(scope, path)

    async def drop(self, scope: str, path: str, *, recursive: bool) -> int:
        self._prune()
        gone = self._at(scope, path) + (self._under(scope, path) if recursive else [])
        for lock in gone:
            self._remove(lock)
        for lock in await self.covering(scope, path):
            kept = frozenset(
                p for p in lock.created if p != path and not (recursive and is_below(p, path))
            )
            if kept != lock.created:
                self._locks[lock.token] = replace(lock, created=kept)
        return len(gone)

    async def note_created(self, token: str, path: str) -> bool:
        self._prune()
        lock = self._locks.get(token)
        if lock is None:
            return False
        self._locks[token] = replace(lock, created=lock.created | {path})
        return True

    async def count(self) -> int:
        self._prune()
        return len(self._locks)

    # ---- dead properties ----------------------------------------------------------
    async def props_get(self, scope: str, key: str) -> dict[str, str]:
        return dict(self._props.get(scope, {}).get(key, {}))

    async def props_get_many(self, scope: str, keys: Sequence[str]) -> list[dict[str, str]]:
        held = self._props.get(scope, {})
        return [dict(held.get(key, {})) for key in keys]

    def _set_props(self, scope: str, key: str, props: Mapping[str, str]) -> None:
        keys = self._props.setdefault(scope, {})
        if props:
            keys[key] = dict(props)
        else:
            keys.pop(key, None)

    async def props_patch(
        self,
        scope: str,
        key: str,
        set: Mapping[str, str],
        remove: Iterable[str],
        *,
        max_bytes: int = PROPS_MAX_BYTES,
    ) -> dict[str, str]:
        props = dict(self._props.get(scope, {}).get(key, {}))
        for name in remove:
            props.pop(name, None)
        props.update(set)
        size = props_size(props)
        if size > max_bytes:
            raise PropsLimit(size, max_bytes)
        self._set_props(scope, key, props)
        return dict(props)

    async def props_copy(self, scope: str, src: str, dst: str) -> None:
        self._set_props(scope, dst, self._props.get(scope, {}).get(src, {}))

    async def props_move(self, scope: str, src: str, dst: str) -> None:
        if src != dst:
            await self.props_copy(scope, src, dst)
            await self.props_delete(scope, src)

    async def props_delete(self, scope: str, key: str) -> None:
        self._props.get(scope, {}).pop(key, None)

    def _take_prefix(self, scope: str, prefix: str, *, remove: bool) -> dict[str, dict[str, str]]:
        keys = self._props.get(scope, {})
        found = {k: v for k, v in keys.items() if k.startswith(prefix)}
        if remove:
            for k in found:
                del keys[k]
        return found

    def _copy_prefix(self, scope: str, src: str, dst: str, *, move: bool) -> int:
        found = self._take_prefix(scope, src, remove=move)
        self._take_prefix(scope, dst, remove=True)
        for key, props in found.items():
            self._set_props(scope, dst + key[len(src) :], props)
        return len(found)

    async def props_copy_prefix(self, scope: str, src: str, dst: str) -> int:
        return self._copy_prefix(scope, src, dst, move=False)

    async def props_move_prefix(self, scope: str, src: str, dst: str) -> int:
        return self._copy_prefix(scope, src, dst, move=True)

    async def props_delete_prefix(self, scope: str, prefix: str) -> int:
        return len(self._take_prefix(scope, prefix, remove=True))

    # ---- the client-noise area ----------------------------------------------------
    def _noise_area(self, scope: str) -> OrderedDict[str, _Noise]:
        """The scope's entries, oldest put first, the expired ones at the front gone (an
        entry put later with a shorter TTL goes when it reaches the front, and is not
        returned meanwhile: see ``_live``)."""
        area = self._noise.setdefault(scope, OrderedDict())
        now = time.monotonic()
        while area:
            key, entry = next(iter(area.items()))
            if entry.expires > now:
                break
            self._noise_pop(scope, key)
        return area

    def _live(self, scope: str) -> list[_Noise]:
        now = time.monotonic()
        return [e for e in self._noise_area(scope).values() if e.expires > now]

    def _noise_pop(self, scope: str, key: str) -> _Noise | None:
        entry = self._noise[scope].pop(key, None)
        if entry is not None:
            self._noise_bytes[scope] -= entry.charge
        return entry

    def _noise_keep(self, scope: str, file: NoiseFile, limits: NoiseLimits) -> NoiseFile:
        area = self._noise_area(scope)
        self._noise_pop(scope, file.key)
        file = replace(file, data=limits.body(file.data))
        charge = ENTRY_OVERHEAD + (len(file.data) if file.data is not None else 0)
        used = self._noise_bytes.setdefault(scope, 0)
        while area and used + charge > limits.max_bytes:
            self._noise_pop(scope, next(iter(area)))
            used = self._noise_bytes[scope]
        if used + charge > limits.max_bytes:  # one body larger than the whole area
            file = replace(file, data=None)
            charge = ENTRY_OVERHEAD
        area[file.key] = _Noise(file, charge, time.monotonic() + limits.ttl)
        self._noise_bytes[scope] = used + charge
        return file

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
        file = NoiseFile(key, size, etag, noise_time(), content_type, data)
        return self._noise_keep(scope, file, limits)

    async def noise_get(self, scope: str, key: str) -> NoiseFile | None:
        entry = self._noise_area(scope).get(key)
        if entry is None or entry.expires <= time.monotonic():
            return None
        return entry.file

    async def noise_drop(self, scope: str, key: str) -> bool:
        self._noise_area(scope)
        entry = self._noise_pop(scope, key)
        return entry is not None and entry.expires > time.monotonic()

    async def noise_move(
        self, scope: str, src: str, dst: str, *, limits: NoiseLimits = NOISE_LIMITS
    ) -> NoiseFile | None:
        self._noise_area(scope)
        entry = self._noise_pop(scope, src)
        if entry is None or entry.expires <= time.monotonic():
            return None
        moved = replace(entry.file, key=dst, last_modified=noise_time())
        return self._noise_keep(scope, moved, limits)

    async def noise_count(self, scope: str) -> int:
        return len(self._live(scope))

    # ---- write guards -------------------------------------------------------------
    @asynccontextmanager
    async def guard(
        self, scope: str, key: str, *, ttl: float = GUARD_TTL, wait: float = GUARD_WAIT
    ) -> AsyncIterator[None]:
        name = (scope, key)
        deadline = time.monotonic() + wait
        while True:
            now = time.monotonic()
            held = self._guards.get(name)
            if held is None or held.expires <= now:
                mine = self._guards[name] = _Guard(uuid.uuid4().hex, now + ttl)
                break
            left = min(deadline, held.expires) - now
            if now >= deadline:
                raise Busy()
            with suppress(TimeoutError):
                await asyncio.wait_for(held.freed.wait(), left)
        try:
            yield
        finally:
            if self._guards.get(name) is mine:  # not taken over after its ttl
                del self._guards[name]
            mine.freed.set()

    # ---- invalidation events ------------------------------------------------------
    async def publish(self, scope: str, key: str, *, prefix: bool = False) -> None:
        self._subscribers.deliver(Invalidation(scope, key, prefix))

    def subscribe(self, callback: Callable[[Invalidation], None]) -> Callable[[], None]:
        return self._subscribers.add(callback)

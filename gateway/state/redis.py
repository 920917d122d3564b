"""The Redis (7+) or Valkey state store, through ``redis.asyncio``: for several processes.

Every check-and-write is one Lua script (``gateway.state.scripts``); write guards are
``SET NX PX`` released by compare-and-delete; invalidation events go over one pub/sub
channel. Every call is bounded by a short timeout: a Redis that cannot be reached makes
operations raise ``StateUnavailable`` at once (they do not wait for it), while a task pings
it with exponential backoff until it answers again. The subscription comes back by itself
too, and then delivers ``EVERYTHING`` since events may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from gateway.errors import StateUnavailable
from gateway.state.base import (
    EVERYTHING,
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
    check_path,
    noise_time,
)
from gateway.state.scripts import SCRIPTS

log = logging.getLogger(__name__)
T = TypeVar("T")

# What "Redis cannot be reached" looks like (AuthenticationError and BusyLoadingError are
# ConnectionErrors too).
LOST = (redis_errors.ConnectionError, redis_errors.TimeoutError, TimeoutError, OSError)
MAX_BACKOFF = 2.0  # seconds between reconnect attempts, at most
FIRST_BACKOFF = 0.05


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _locks(reply: Any) -> list[LockRecord]:
    """Lock records from a script's JSON (Lua's cjson writes an empty list as ``{}``)."""
    items = json.loads(reply) if reply else []
    return [_lock(item) for item in items] if isinstance(items, list) else []


def _lock(item: dict[str, Any]) -> LockRecord:
    created = item.get("created") or []
    return LockRecord(
        token=item["token"],
        scope=item["scope"],
        root=item["root"],
        depth="infinity" if item["depth"] == "infinity" else "0",
        exclusive=item["exclusive"] == "1",
        owner=item["owner"],
        principal=item["principal"],
        timeout=int(item["timeout"]) / 1000,
        expires=int(float(item["expires"])) / 1000,
        is_dir=item["is_dir"] == "1",
        created=frozenset(created) if isinstance(created, list) else frozenset(),
    )


def _noise(meta: Any, data: Any) -> NoiseFile:
    m = json.loads(meta)
    return NoiseFile(
        key=m["key"],
        size=int(m["size"]),
        etag=m["etag"],
        last_modified=datetime.fromisoformat(m["modified"]),
        content_type=m.get("content_type"),
        data=bytes(data) if data is not None else None,
    )


class RedisState:
    """``StateStore`` on Redis or Valkey. Build it with ``gateway.state.open_state``."""

    def __init__(
        self, client: Redis, description: str, *, namespace: str = "bucketdav",
        timeout: float = 2.0,
    ) -> None:
        self._client = client
        self._description = description
        self._prefix = namespace + ":"
        self._channel = self._prefix + "events"
        self._timeout = timeout
        self._scripts = {name: client.register_script(src) for name, src in SCRIPTS.items()}
        self._available = True
        self._reconnect: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._subscribers = Subscribers()

    @property
    def description(self) -> str:
        return self._description

    @property
    def available(self) -> bool:
        return self._available

    # ---- connection -----------------------------------------------------------------
    def _down(self) -> StateUnavailable:
        return StateUnavailable(
            f"the state store ({self._description}) is unavailable; locks, properties and "
            "guarded writes wait for it to come back"
        )

    async def _do(self, make: Callable[[], Awaitable[T]]) -> T:
        """One call to Redis, bounded by the timeout; StateUnavailable when it is down."""
        if not self._available:
            raise self._down()
        try:
            async with asyncio.timeout(self._timeout):
                return await make()
        except LOST:
            self._lost()
            raise self._down() from None

    async def _script(self, name: str, *args: str | bytes | int) -> Any:
        script = self._scripts[name]
        return await self._do(lambda: script(keys=[], args=[self._prefix, *args]))

    def _lost(self) -> None:
        if self._available:
            log.warning("state store %s unreachable; reconnecting", self._description)
        self._available = False
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnecting())

    async def _reconnecting(self) -> None:
        delay = FIRST_BACKOFF
        while True:
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(self._timeout):
                    await self._client.ping()
            except LOST:
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            self._available = True
            log.warning("state store %s reachable again", self._description)
            return

    async def start(self) -> None:
        """Check that Redis answers (StateUnavailable with the reason if not) and start
        listening for events."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.ping()
        except LOST as e:
            reason = str(e) or f"no answer within {self._timeout:g} s"
            raise StateUnavailable(
                f"cannot reach the state store {self._description}: {reason}"
            ) from None
        self._listener = asyncio.get_running_loop().create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                await self._listening.wait()

    async def ping(self) -> None:
        # A real try even while known down (not the fast refusal): /readyz asks this.
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.ping()
        except LOST:
            self._lost()
            raise self._down() from None
        self._available = True

    async def healthy(self) -> bool:
        try:
            await self.ping()
        except StateUnavailable:
            return False
        return True

    async def close(self) -> None:
        for task in (self._listener, self._reconnect):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._subscribers.clear()
        await self._client.aclose()

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
        check_path(root)
        token = f"urn:uuid:{uuid.uuid4()}"
        kind, value = await self._script(
            "acquire", scope, root, depth, "1" if exclusive else "0", owner, principal,
            _ms(timeout), "1" if is_dir else "0", token, limits.max_per_resource,
            limits.max_per_principal,
        )
        kind = _text(kind)
        if kind == "conflict":
            raise LockConflict(_text(value))
        if kind in ("resource", "principal"):
            raise LockLimit(kind, int(value))  # type: ignore[arg-type]
        return _locks(value)[0]

    async def refresh(self, token: str, timeout: float) -> LockRecord | None:  # noqa: ASYNC109
        found = _locks(await self._script("refresh", token, _ms(timeout)))
        return found[0] if found else None

    async def release(self, token: str, principal: str) -> bool:
        done = int(await self._script("release", token, principal))
        if done < 0:
            raise LockNotOwned()
        return done == 1

    async def get(self, token: str) -> LockRecord | None:
        found = _locks(await self._script("get", token))
        return found[0] if found else None

    async def covering(self, scope: str, path: str) -> list[LockRecord]:
        return _locks(await self._script("covering", scope, path))

    async def below(self, scope: str, path: str) -> list[LockRecord]:
        return _locks(await self._script("below", scope, path))

    async def drop(self, scope: str, path: str, *, recursive: bool) -> int:
        return int(await self._script("drop", scope, path, "1" if recursive else "0"))

    async def note_created(self, token: str, path: str) -> bool:
        return int(await self._script("note_created", token, path)) == 1

    async def count(self) -> int:
        return int(await self._script("count"))

    # ---- dead properties ----------------------------------------------------------
    async def props_get(self, scope: str, key: str) -> dict[str, str]:
        name = f"{self._prefix}props:{scope}\0{key}"
        flat = await self._do(lambda: self._client.hgetall(name))
        return {_text(k): _text(v) for k, v in flat.items()}

    async def props_get_many(self, scope: str, keys: Sequence[str]) -> list[dict[str, str]]:
        if not keys:
            return []
        pipe = self._client.pipeline(transaction=False)  # one round trip for all
        for key in keys:
            pipe.hgetall(f"{self._prefix}props:{scope}\0{key}")
        flats = await self._do(pipe.execute)
        return [{_text(k): _text(v) for k, v in flat.items()} for flat in flats]

    async def props_patch(
        self,
        scope: str,
        key: str,
        set: Mapping[str, str],
        remove: Iterable[str],
        *,
        max_bytes: int = PROPS_MAX_BYTES,
    ) -> dict[str, str]:
        kind, value = await self._script(
            "props_patch", scope, key, max_bytes,
            json.dumps(dict(set), ensure_ascii=False), json.dumps(list(remove)),
        )
        if _text(kind) == "limit":
            raise PropsLimit(int(value), max_bytes)
        flat = [_text(v) for v in value]
        return dict(zip(flat[::2], flat[1::2], strict=True))

    async def props_copy(self, scope: str, src: str, dst: str) -> None:
        await self._script("props_copy", scope, src, dst, "0")

    async def props_move(self, scope: str, src: str, dst: str) -> None:
        await self._script("props_copy", scope, src, dst, "1")

    async def props_delete(self, scope: str, key: str) -> None:
        await self._script("props_delete", scope, key)

    async def props_copy_prefix(self, scope: str, src: str, dst: str) -> int:
        return int(await self._script("props_copy_prefix", scope, src, dst, "0"))

    async def props_move_prefix(self, scope: str, src: str, dst: str) -> int:
        return int(await self._script("props_copy_prefix", scope, src, dst, "1"))

    async def props_delete_prefix(self, scope: str, prefix: str) -> int:
        return int(await self._script("props_delete_prefix", scope, prefix))

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
        data = limits.body(data)
        now = noise_time()
        meta = json.dumps({"key": key, "size": size, "etag": etag,
                           "modified": now.isoformat(), "content_type": content_type})
        kept = await self._script(
            "noise_put", scope, key, meta, data or b"", "1" if data is not None else "0",
            _ms(limits.ttl), limits.max_bytes,
        )
        return NoiseFile(key, size, etag, now, content_type, data if int(kept) else None)

    async def noise_get(self, scope: str, key: str) -> NoiseFile | None:
        name = f"{self._prefix}noise:{scope}\0{key}"
        held = await self._do(lambda: self._client.hgetall(name))
        if b"meta" not in held:
            return None
        return _noise(held[b"meta"], held.get(b"data"))

    async def noise_drop(self, scope: str, key: str) -> bool:
        return int(await self._script("noise_drop", scope, key)) == 1

    async def noise_move(
        self, scope: str, src: str, dst: str, *, limits: NoiseLimits = NOISE_LIMITS
    ) -> NoiseFile | None:
        now = noise_time()
        moved = await self._script(
            "noise_move", scope, src, dst, now.isoformat(), _ms(limits.ttl), limits.max_bytes
        )
        if not moved:
            return None
        return _noise(moved[0], moved[1] if len(moved) > 1 else None)

    async def noise_count(self, scope: str) -> int:
        return int(await self._script("noise_count", scope))

    # ---- write guards -------------------------------------------------------------
    @asynccontextmanager
    async def guard(
        self, scope: str, key: str, *, ttl: float = GUARD_TTL, wait: float = GUARD_WAIT
    ) -> AsyncIterator[None]:
        name = f"{self._prefix}guard:{scope}\0{key}"
        token = uuid.uuid4().hex
        deadline = time.monotonic() + wait
        delay = 0.01
        while not await self._do(lambda: self._client.set(name, token, nx=True, px=_ms(ttl))):
            left = deadline - time.monotonic()
            if left <= 0:
                raise Busy()
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 0.2)
        try:
            yield
        finally:
            # Unreachable now: the guard frees itself after ttl.
            with contextlib.suppress(StateUnavailable):
                await self._script("guard_release", name, token)

    # ---- invalidation events ------------------------------------------------------
    async def publish(self, scope: str, key: str, *, prefix: bool = False) -> None:
        event = json.dumps({"scope": scope, "key": key, "prefix": prefix})
        await self._do(lambda: self._client.publish(self._channel, event))

    def subscribe(self, callback: Callable[[Invalidation], None]) -> Callable[[], None]:
        return self._subscribers.add(callback)

    def _received(self, data: Any) -> None:
        try:
            e = json.loads(data)
            event = Invalidation(str(e["scope"]), str(e["key"]), bool(e["prefix"]))
        except (ValueError, KeyError, TypeError):  # not ours: someone else on the channel
            log.warning("state store %s: ignored a malformed event", self._description)
            return
        self._subscribers.deliver(event)

    async def _listen(self) -> None:
        delay, missed = FIRST_BACKOFF, False
        while True:
            pubsub: PubSub = self._client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self._listening.set()
                if missed:
                    self._subscribers.deliver(EVERYTHING)
                    missed, delay = False, FIRST_BACKOFF
                while True:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=1.0
                    )
                    if message is not None and _text(message["type"]) == "message":
                        self._received(message["data"])
            except LOST:
                missed = True
            except Exception:  # the listener must outlive anything: drop caches and go on
                log.exception("state store %s: event listener failed", self._description)
                missed = True
            finally:
                with contextlib.suppress(*LOST):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

"""Cache invalidation across processes: every write is told to every process's caches.

Each ``StoreView`` keeps its own metadata cache (HEADs, 404s, listing pages). A write through
this process updates its own view at once; ``CacheEvents`` also publishes ``(scope, key)`` —
or ``(scope, prefix)`` for a batch — on the state store (``StateStore.publish``), and every
process, subscribed at startup, drops the matching entries of its views of that store (the
scope is the store's description). So a PUT through one process or replica and a PROPFIND or
GET through another sees the new object without waiting for the metadata TTL.

* An event this process published comes back to it (on Redis a moment later): it is
  recognised and skipped, so the metadata the write just taught its view is not thrown away;
  other views of the same store in this process are told at once instead.
* ``EVERYTHING`` (the subscription came back after an outage: events may have been missed)
  drops every view's metadata.
* Reads never wait for the state store: a publish that fails (the store unreachable) leaves
  the write done and the other processes' caches stale until their metadata TTL, or until
  their own subscription comes back (then they drop everything).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from gateway.state.base import Invalidation, StateStore

log = logging.getLogger("bucketdav")

Event = tuple[str, str, bool]  # scope, key or prefix, is a prefix
ECHO_WAIT = 0.5  # seconds a write waits for its own event to come back


class Forgetful(Protocol):
    """What an event reaches: a view's caches of one store."""

    @property
    def description(self) -> str: ...

    def forget(self, key: str, prefix: bool) -> None:
        """Drop what is cached about ``key`` (with ``prefix``: every key under it)."""
        ...

    def forget_everything(self) -> None: ...


class CacheEvents:
    """The engine's link to the state store's invalidation events."""

    def __init__(self) -> None:
        self.state: StateStore | None = None
        # Weak: views made for one request (a user's narrowed root) come and go.
        self._views: dict[str, weakref.WeakSet[Forgetful]] = {}
        self._mine: Counter[Event] = Counter()  # published here, not yet come back
        self._echoes: dict[Event, list[asyncio.Future[None]]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self.failed = 0  # publishes the state store did not take

    def attach(self, state: StateStore) -> None:
        """Publish on ``state`` from now on, and subscribe to it (once, at startup)."""
        if self.state is not None:
            raise RuntimeError("the engine already has a state store")
        self.state = state
        self._unsubscribe = state.subscribe(self._received)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def register(self, view: Forgetful) -> None:
        self._views.setdefault(view.description, weakref.WeakSet()).add(view)

    async def publish(self, origin: Forgetful, key: str, *, prefix: bool = False) -> None:
        """Tell every process that ``key`` (or everything under it) changed in ``origin``'s
        store; ``origin`` has already updated its own caches."""
        scope = origin.description
        for view in list(self._views.get(scope, ())):
            if view is not origin:
                view.forget(key, prefix)
        if self.state is None:
            return
        event = (scope, key, prefix)
        self._mine[event] += 1
        try:
            await self.state.publish(scope, key, prefix=prefix)
        except Exception as exc:  # the write is done: a lost event only leaves a stale cache
            self._settle(event)
            self.failed += 1
            log.debug("cache invalidation of %s not published: %s", key, exc)
            return
        if self._mine[event]:
            await self._echo(event)

    async def _echo(self, event: Event) -> None:
        """Wait (briefly) for ``event`` to come back through this process's subscription:
        the state store hands it to every subscriber at once, so by then the other
        processes have it too, and the client that wrote is answered only after that (a
        read it sends next through another process finds that process's cache dropped)."""
        waiter = asyncio.get_running_loop().create_future()
        waiters = self._echoes.setdefault(event, [])
        waiters.append(waiter)
        try:
            async with asyncio.timeout(ECHO_WAIT):
                await waiter
        except TimeoutError:
            pass
        finally:
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters and self._echoes.get(event) is waiters:
                del self._echoes[event]

    def _echoed(self, event: Event | None) -> None:
        """Wake one writer waiting for ``event`` (every writer with None)."""
        lists = list(self._echoes.values()) if event is None else [self._echoes.get(event, [])]
        for waiters in lists:
            # One echo answers one writer: the first still waiting (one already woken may
            # not have left the list yet, and must not swallow this echo).
            for waiter in [w for w in waiters if not w.done()][: None if event is None else 1]:
                waiter.set_result(None)

    def _settle(self, event: Event) -> bool:
        """Count one of this process's own events as come back; False if it was not one."""
        if not self._mine[event]:
            self._mine.pop(event, None)
            return False
        self._mine[event] -= 1
        if not self._mine[event]:
            del self._mine[event]
        return True

    def _received(self, event: Invalidation) -> None:
        if event.everything:
            self._mine.clear()  # what was in flight may be lost with the subscription
            self._echoed(None)
            for views in self._views.values():
                for view in list(views):
                    view.forget_everything()
            return
        mine = (event.scope, event.key, event.prefix)
        if self._settle(mine):
            self._echoed(mine)
            return
        for view in list(self._views.get(event.scope, ())):
            view.forget(event.key, event.prefix)

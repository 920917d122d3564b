"""Engine: one per process, what every client shares, and the maker of store views.

It holds the memory budget, the block cache, the process-wide limit on ranged GETs in
flight, the counters and the background tasks (``Shared``), and gives each store a
``StoreView`` (``view(store)``): the layers above only ever use views.

``use_state(state)`` links it to the state store the composition root opened: writes are
published to every process's caches (``gateway.engine.events``), stored modification
times are written through to it (``gateway.engine.mtimes``), and when the state is
shared by other processes, a create's commit holds the state store's write guard as well as
the process's own, so two creators of one new name in two processes never both win.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from gateway.engine.context import Shared
from gateway.engine.guard import WriteGuard
from gateway.engine.view import StoreView
from gateway.state.base import StateStore
from gateway.storage.base import ObjectStore


class StackedWriteGuard:
    """Several guards held in order: the process's first (its waiters queue in memory, not
    polling the state store), then the one every process shares."""

    def __init__(self, *guards: WriteGuard) -> None:
        self.guards = guards

    @asynccontextmanager
    async def guard(self, scope: str, key: str) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for guard in self.guards:
                await stack.enter_async_context(guard.guard(scope, key))
            yield


class Engine(Shared):
    def view(self, store: ObjectStore, max_connections: int | None = None) -> StoreView:
        """The engine's face for one store; ``max_connections``: its connection pool
        (``gateway.storage.factory.connection_limit``), None for a store without one."""
        return StoreView(self, store, max_connections)

    def use_state(self, state: StateStore, *, shared: bool) -> None:
        """Publish writes on ``state`` and drop what its events name; with ``shared``
        (other processes use it too) guard creates on it as well. Once, at startup."""
        self.events.attach(state)
        self.mtimes.state = state
        if shared:
            self.write_guard = StackedWriteGuard(self.write_guard, state)

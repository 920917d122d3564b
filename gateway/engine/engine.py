"""Engine: one per process, what every client shares, and the maker of store views.

It holds the memory budget, the block cache, the process-wide limit on ranged GETs in
flight, the counters and the background tasks (``Shared``), and gives each store a
``StoreView`` (``view(store)``): the layers above only ever use views.
"""

from __future__ import annotations

from gateway.engine.context import Shared
from gateway.engine.view import StoreView
from gateway.storage.base import ObjectStore


class Engine(Shared):
    def view(self, store: ObjectStore, max_connections: int | None = None) -> StoreView:
        """The engine's face for one store; ``max_connections`` defaults to the store's
        own setting (``StoreSettings.max_connections``)."""
        return StoreView(self, store, max_connections)

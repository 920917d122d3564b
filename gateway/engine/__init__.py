"""The stream engine: every read and listing of every front-end goes through it."""

from gateway.engine.budget import MemoryBudget
from gateway.engine.core import Engine, StoreView
from gateway.engine.counters import Counters
from gateway.engine.reader import OpenRead
from gateway.engine.tuning import Tuning

__all__ = ["Counters", "Engine", "MemoryBudget", "OpenRead", "StoreView", "Tuning"]

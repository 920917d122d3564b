"""The stream engine: every read, listing and write of every front-end goes through it."""

from __future__ import annotations

from gateway.engine.budget import MemoryBudget
from gateway.engine.counters import Counters
from gateway.engine.engine import Engine
from gateway.engine.readahead import ReadAhead
from gateway.engine.reader import OpenRead
from gateway.engine.tuning import Tuning
from gateway.engine.upload import LengthMismatch
from gateway.engine.view import StoreView

__all__ = [
    "Counters",
    "Engine",
    "LengthMismatch",
    "MemoryBudget",
    "OpenRead",
    "ReadAhead",
    "StoreView",
    "Tuning",
]

"""The engine's sizes and limits, block geometry and retry backoff.

Block size: objects are cached and shared in 1 MiB blocks. Small enough that the first
block of a small object is one cheap GET (fast first byte, and one request serves the
whole object when it fits), and that sharing and eviction are fine-grained; large enough
that per-block bookkeeping is negligible (a 1 GiB object is 1024 blocks). A ranged GET
covers several consecutive blocks at once (up to ``part_size``, default the
``--read-part-size``), so block granularity does not multiply store requests.

Read-ahead: the sizes it works with live here (``max_window``, ``part_size``,
``streaming_after``); the decisions made with them (window growth and shrink, seeks,
exact small reads, drop-behind, GET sizes) are ``gateway.engine.readahead``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from gateway.settings import EngineSettings

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Tuning:
    block_size: int = MiB
    part_size: int = 8 * MiB  # largest ranged GET issued for read-ahead
    max_window: int = 128 * MiB  # usually a quarter of the budget limits it (readahead)
    cache_share: float = 0.5  # most of the budget idle cached blocks may hold
    # A reader that has read this much sequentially is streaming: blocks it has consumed
    # are dropped at once unless another reader of the object is active ("drop-behind"),
    # so a long streamed read does not push everything else out of the cache.
    streaming_after: int = 8 * MiB
    max_fetches: int = 256  # ranged GETs in flight in the whole process
    retries: int = 3  # per range, after the first attempt
    backoff: float = 0.1  # seconds before the first retry; doubles each retry
    max_backoff: float = 2.0

    @classmethod
    def from_settings(cls, settings: EngineSettings, **changes: Any) -> Tuning:
        part = max(1, settings.read_part_size or settings.part_size) * MiB
        return replace(cls(part_size=part), **changes)


def block_count(size: int, block: int) -> int:
    return -(-size // block)


def block_span(index: int, size: int, block: int) -> tuple[int, int]:
    """``[start, end)`` of block ``index`` of an object of ``size`` bytes."""
    start = index * block
    return start, min(start + block, size)


def backoff_delay(attempt: int, tuning: Tuning, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter before retry number ``attempt`` (1-based)."""
    ceiling: float = min(tuning.max_backoff, tuning.backoff * 2.0 ** (attempt - 1))
    jitter: float = (rng or random).random()
    return ceiling * (0.5 + 0.5 * jitter)

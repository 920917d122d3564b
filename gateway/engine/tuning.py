"""The engine's sizes and limits, and the pure decisions made with them.

Block size: objects are cached and shared in 1 MiB blocks. Small enough that the first
block of a small object is one cheap GET (fast first byte, and one request serves the
whole object when it fits), and that sharing and eviction are fine-grained; large enough
that per-block bookkeeping is negligible (a 1 GiB object is 1024 blocks). A ranged GET
covers several consecutive blocks at once (up to ``part_size``, default the
``--read-part-size``), so block granularity does not multiply store requests.

Read-ahead: each reader has a window that starts at one block and doubles every time the
reader has consumed a whole window sequentially, up to ``max_window`` (and at most an
eighth of the memory budget, so several readers can run at full speed side by side). A
seek resets it. The window is fetched as parallel ranged GETs of ``part_for(window)``
bytes: that is how one client gets several times the bandwidth of one connection.
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
    max_window: int = 64 * MiB
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


def window_cap(tuning: Tuning, budget_limit: int) -> int:
    """The largest read-ahead window: ``max_window``, but no more than an eighth of the
    budget, and never less than one block."""
    return max(tuning.block_size, min(tuning.max_window, budget_limit // 8))


def grow(window: int, cap: int) -> int:
    return min(window * 2, cap)


def shrink(window: int, block: int) -> int:
    """Halve the window when the budget refuses read-ahead (at least one block)."""
    return max(block, window // 2)


def part_for(window: int, tuning: Tuning) -> int:
    """Bytes per ranged GET for a window: half the window (so even a small window is two
    requests in parallel), between one block and ``part_size``, a whole number of blocks."""
    block = tuning.block_size
    part = min(max(window // 2, block), max(tuning.part_size, block))
    return part - part % block


def split_runs(indices: list[int], per_request: int) -> list[list[int]]:
    """Group block indices into runs of consecutive blocks, each at most ``per_request``
    long: one ranged GET per run."""
    runs: list[list[int]] = []
    for index in indices:
        run = runs[-1] if runs else None
        if run is not None and run[-1] + 1 == index and len(run) < per_request:
            run.append(index)
        else:
            runs.append([index])
    return runs


def backoff_delay(attempt: int, tuning: Tuning, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter before retry number ``attempt`` (1-based)."""
    ceiling: float = min(tuning.max_backoff, tuning.backoff * 2.0 ** (attempt - 1))
    jitter: float = (rng or random).random()
    return ceiling * (0.5 + 0.5 * jitter)

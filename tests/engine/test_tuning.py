"""The engine's sizes: block spans, the read part size, retry backoff (the read-ahead
decisions are tests/engine/test_readahead_policy.py)."""

from __future__ import annotations

import random

from gateway.engine.tuning import Tuning, backoff_delay, block_count, block_span
from gateway.settings import EngineSettings

MiB = 1024 * 1024


def test_blocks_cover_the_object_and_the_last_one_is_short() -> None:
    assert block_count(0, MiB) == 0
    assert block_count(1, MiB) == 1
    assert block_count(MiB, MiB) == 1
    assert block_count(MiB + 1, MiB) == 2
    assert block_span(1, 2 * MiB + 5, MiB) == (MiB, 2 * MiB)
    assert block_span(2, 2 * MiB + 5, MiB) == (2 * MiB, 2 * MiB + 5)


def test_the_read_part_size_setting_sets_the_part_size() -> None:
    settings = EngineSettings(part_size=8, read_part_size=16)
    assert Tuning.from_settings(settings).part_size == 16 * MiB


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    tuning = Tuning(backoff=0.1, max_backoff=1.0)
    rng = random.Random(1)
    first = [backoff_delay(1, tuning, rng) for _ in range(50)]
    third = [backoff_delay(3, tuning, rng) for _ in range(50)]
    assert all(0.05 <= d <= 0.1 for d in first)
    assert all(0.2 <= d <= 0.4 for d in third)
    assert len(set(first)) > 1  # jittered
    assert all(d <= 1.0 for d in (backoff_delay(20, tuning, rng) for _ in range(10)))

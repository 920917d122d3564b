"""The pure decisions of the read-ahead: block spans, window growth, GET sizes."""

from __future__ import annotations

import random

from gateway.engine.tuning import (
    Tuning,
    backoff_delay,
    block_count,
    block_span,
    grow,
    part_for,
    shrink,
    split_runs,
    window_cap,
)
from gateway.settings import EngineSettings

MiB = 1024 * 1024


def test_blocks_cover_the_object_and_the_last_one_is_short() -> None:
    assert block_count(0, MiB) == 0
    assert block_count(1, MiB) == 1
    assert block_count(MiB, MiB) == 1
    assert block_count(MiB + 1, MiB) == 2
    assert block_span(1, 2 * MiB + 5, MiB) == (MiB, 2 * MiB)
    assert block_span(2, 2 * MiB + 5, MiB) == (2 * MiB, 2 * MiB + 5)


def test_the_window_doubles_up_to_its_cap_and_halves_down_to_one_block() -> None:
    assert grow(MiB, 64 * MiB) == 2 * MiB
    assert grow(48 * MiB, 64 * MiB) == 64 * MiB
    assert shrink(8 * MiB, MiB) == 4 * MiB
    assert shrink(MiB, MiB) == MiB


def test_the_window_cap_is_at_most_an_eighth_of_the_budget() -> None:
    tuning = Tuning(max_window=64 * MiB)
    assert window_cap(tuning, 1024 * MiB) == 64 * MiB
    assert window_cap(tuning, 128 * MiB) == 16 * MiB
    assert window_cap(tuning, 2 * MiB) == MiB  # never below one block


def test_gets_are_half_a_window_between_one_block_and_the_part_size() -> None:
    tuning = Tuning(part_size=8 * MiB)
    assert part_for(MiB, tuning) == MiB
    assert part_for(4 * MiB, tuning) == 2 * MiB
    assert part_for(64 * MiB, tuning) == 8 * MiB
    assert part_for(3 * MiB, tuning) % MiB == 0


def test_the_read_part_size_setting_sets_the_part_size() -> None:
    settings = EngineSettings(part_size=8, read_part_size=16)
    assert Tuning.from_settings(settings).part_size == 16 * MiB


def test_missing_blocks_become_runs_of_consecutive_blocks_no_longer_than_a_part() -> None:
    assert split_runs([0, 1, 2, 3, 4], 2) == [[0, 1], [2, 3], [4]]
    assert split_runs([1, 2, 5, 6, 7], 8) == [[1, 2], [5, 6, 7]]
    assert split_runs([], 4) == []


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    tuning = Tuning(backoff=0.1, max_backoff=1.0)
    rng = random.Random(1)
    first = [backoff_delay(1, tuning, rng) for _ in range(50)]
    third = [backoff_delay(3, tuning, rng) for _ in range(50)]
    assert all(0.05 <= d <= 0.1 for d in first)
    assert all(0.2 <= d <= 0.4 for d in third)
    assert len(set(first)) > 1  # jittered
    assert all(d <= 1.0 for d in (backoff_delay(20, tuning, rng) for _ in range(10)))

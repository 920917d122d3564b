"""The read-ahead policy on its own: no store, no blocks, no event loop.

Each test drives ``ReadAhead`` the way ``OpenRead`` does (where a range starts, which
blocks are live, what was consumed, when memory was refused) and checks its decisions.
"""

from __future__ import annotations

from gateway.engine.readahead import (
    FEW_READERS,
    GETS_PER_WINDOW,
    ReadAhead,
    grow,
    part_for,
    shrink,
    split_runs,
    start_window,
    window_cap,
)
from gateway.engine.tuning import Tuning

MiB = 1024 * 1024
TUNING = Tuning(block_size=MiB, part_size=8 * MiB, max_window=64 * MiB, streaming_after=8 * MiB)
BUDGET = 1024 * MiB


def nothing_live(index: int) -> bool:
    return False


def consume(policy: ReadAhead, start: int, end: int, shared: bool = False) -> list[bool]:
    """Consume ``[start, end)`` block by block as OpenRead does; the keep decisions."""
    keeps = []
    pos = start
    while pos < end:
        stop = min(end, (pos // MiB + 1) * MiB)
        keeps.append(policy.consumed(pos // MiB, pos, stop, shared=shared))
        pos = stop
    return keeps


# ---- the pure functions -----------------------------------------------------------------


def test_the_window_doubles_up_to_its_cap_and_halves_down_to_one_block() -> None:
    assert grow(MiB, 64 * MiB) == 2 * MiB
    assert grow(48 * MiB, 64 * MiB) == 64 * MiB
    assert shrink(8 * MiB, MiB) == 4 * MiB
    assert shrink(MiB, MiB) == MiB


def test_the_window_cap_is_at_most_a_quarter_of_the_budget() -> None:
    tuning = Tuning(max_window=64 * MiB)
    assert window_cap(tuning, 1024 * MiB) == 64 * MiB
    assert window_cap(tuning, 128 * MiB) == 32 * MiB
    assert window_cap(Tuning(), 400 * MiB) == 100 * MiB  # --memory-target 512
    assert window_cap(tuning, 2 * MiB) == MiB  # never below one block


def test_a_range_starts_with_a_window_of_its_span_in_blocks_up_to_the_cap() -> None:
    assert start_window(64 * 1024, 64 * MiB, MiB) == MiB  # at least one block
    assert start_window(0, 64 * MiB, MiB) == MiB
    assert start_window(5 * MiB + 1, 64 * MiB, MiB) == 6 * MiB  # whole blocks
    assert start_window(1024 * MiB, 64 * MiB, MiB) == 64 * MiB  # the cap


def test_gets_split_a_window_many_ways_between_a_quarter_part_and_the_part_size() -> None:
    tuning = Tuning(part_size=8 * MiB)
    assert GETS_PER_WINDOW > 8  # more GETs in flight than the limit's 8 connections
    assert part_for(48 * MiB, tuning) == 48 * MiB // GETS_PER_WINDOW
    assert part_for(100 * MiB, tuning) == 8 * MiB  # the default window: whole parts
    assert part_for(1024 * MiB, tuning) == 8 * MiB  # never above --read-part-size
    assert part_for(16 * MiB, tuning) == 2 * MiB  # never below a quarter of it
    assert part_for(4 * MiB, tuning) == 2 * MiB  # a small window: two GETs of half
    assert part_for(2 * MiB, tuning) == MiB
    assert part_for(MiB, tuning) == MiB  # at least one block
    assert part_for(3 * MiB, tuning) % MiB == 0
    assert part_for(40 * MiB, tuning) % MiB == 0


def test_missing_blocks_become_runs_of_consecutive_blocks_no_longer_than_a_part() -> None:
    assert split_runs([0, 1, 2, 3, 4], 2) == [[0, 1], [2, 3], [4]]
    assert split_runs([1, 2, 5, 6, 7], 8) == [[1, 2], [5, 6, 7]]
    assert split_runs([], 4) == []


# ---- the window -----------------------------------------------------------------------------


def test_the_window_starts_at_one_block_and_doubles_each_time_a_window_is_consumed() -> None:
    policy = ReadAhead(TUNING, BUDGET)
    assert policy.window == MiB
    assert not policy.seek(0)  # a read from the start is sequential
    windows = []
    for block in range(127):
        consume(policy, block * MiB, (block + 1) * MiB)
        windows.append(policy.window)
    # 1 -> 2 after 1 MiB, -> 4 after 2 more, -> 8 after 4 more...: doubling, then the cap
    assert windows[:7] == [2 * MiB, 2 * MiB, 4 * MiB, 4 * MiB, 4 * MiB, 4 * MiB, 8 * MiB]
    assert windows[-1] == 64 * MiB
    assert max(windows) == 64 * MiB


def test_a_long_range_starts_with_its_whole_window_at_once() -> None:
    # A GET says how far it reads: the window starts at the span (up to the cap) instead
    # of ramping from one block, at the first range and after a seek.
    policy = ReadAhead(TUNING, BUDGET)
    assert not policy.seek(0, 1024 * MiB)
    assert policy.window == 64 * MiB
    assert policy.seek(300 * MiB, 556 * MiB)
    assert policy.window == 64 * MiB
    assert policy.seek(10 * MiB, 13 * MiB + 5)
    assert policy.window == 4 * MiB  # a shorter range: its span in whole blocks
    assert policy.seek(50 * MiB, 50 * MiB + 4096)
    assert policy.window == MiB  # a short read: one block (and it is read exact)
    assert policy.wants_exact(50 * MiB, 50 * MiB + 4096, first_held=False, live=nothing_live)


def test_the_start_window_follows_the_budget_cap() -> None:
    policy = ReadAhead(TUNING, 32 * MiB)  # a quarter: 8 MiB
    assert not policy.seek(0, 1024 * MiB)
    assert policy.window == 8 * MiB


def test_a_continuing_range_widens_the_window_to_its_span_but_never_narrows_it() -> None:
    policy = ReadAhead(TUNING, BUDGET)
    assert not policy.seek(0, MiB)
    consume(policy, 0, MiB)
    assert policy.window == 2 * MiB
    assert not policy.seek(MiB, 17 * MiB)  # continues, and asks for 16 MiB
    assert policy.window == 16 * MiB
    consume(policy, MiB, 17 * MiB)
    grown = policy.window
    assert grown == 32 * MiB
    assert not policy.seek(17 * MiB, 18 * MiB)  # a short continuation keeps the window
    assert policy.window == grown


def test_the_cap_follows_the_memory_budget() -> None:
    policy = ReadAhead(TUNING, 32 * MiB)  # a quarter: 8 MiB
    consume(policy, 0, 100 * MiB)
    assert policy.window == 8 * MiB


def test_a_seek_resets_the_window_and_a_continuation_keeps_it() -> None:
    policy = ReadAhead(TUNING, BUDGET)
    consume(policy, 0, 24 * MiB)
    grown = policy.window
    assert grown > 4 * MiB
    assert not policy.seek(24 * MiB)  # where the last range ended
    assert policy.window == grown
    assert policy.seek(40 * MiB)
    assert policy.window == MiB


def test_refused_memory_halves_the_window_down_to_one_block() -> None:
    policy = ReadAhead(TUNING, BUDGET)
    consume(policy, 0, 16 * MiB)
    assert policy.window == 16 * MiB
    policy.refused()
    assert policy.window == 8 * MiB
    for _ in range(10):
        policy.refused()
    assert policy.window == MiB
    # growth starts over from the shrunk window: a whole window consumed doubles it
    consume(policy, 16 * MiB, 17 * MiB)
    assert policy.window == 2 * MiB


def test_after_a_refusal_a_whole_new_window_must_be_consumed_before_it_grows() -> None:
    policy = ReadAhead(TUNING, BUDGET)
    consume(policy, 0, 12 * MiB)  # 8 MiB window, 5 MiB of it consumed
    assert policy.window == 8 * MiB
    policy.refused()
    consume(policy, 12 * MiB, 15 * MiB)
    assert policy.window == 4 * MiB  # bytes before the refusal do not count
    consume(policy, 15 * MiB, 16 * MiB)
    assert policy.window == 8 * MiB


# ---- exact small reads ---------------------------------------------------------------------


def test_a_short_read_after_a_seek_is_exact_unless_its_blocks_are_live() -> None:
    policy = ReadAhead(TUNING, BUDGET)
    start, end = 5 * MiB + 100, 5 * MiB + 100 + 64 * 1024
    assert policy.seek(start)
    assert policy.wants_exact(start, end, first_held=False, live=nothing_live)
    assert not policy.wants_exact(start, end, first_held=False, live=lambda i: i == 5)
    # a short read across a block boundary looks at both blocks
    across = (6 * MiB - 10, 6 * MiB + 10)
    assert not policy.wants_exact(*across, first_held=False, live=lambda i: i == 6)
    assert policy.wants_exact(*across, first_held=False, live=lambda i: i == 7)


def test_whole_blocks_for_long_or_empty_reads_and_for_block_0_held_by_open() -> None:
    policy = ReadAhead(TUNING, BUDGET)
    assert not policy.wants_exact(3 * MiB, 4 * MiB, first_held=False, live=nothing_live)
    assert not policy.wants_exact(3 * MiB, 3 * MiB, first_held=False, live=nothing_live)
    assert not policy.wants_exact(100, 200, first_held=True, live=nothing_live)
    assert policy.wants_exact(100, 200, first_held=False, live=nothing_live)
    assert policy.wants_exact(MiB + 100, MiB + 200, first_held=True, live=nothing_live)


def test_a_range_continuing_an_exact_read_is_sequential() -> None:
    policy = ReadAhead(TUNING, BUDGET)
    assert policy.seek(5 * MiB)
    policy.read_exact(5 * MiB + 4096)
    assert not policy.seek(5 * MiB + 4096)


# ---- top-up and GET sizes ------------------------------------------------------------------


def test_the_window_wants_blocks_up_to_window_bytes_ahead_and_never_past_the_range() -> None:
    policy = ReadAhead(TUNING, BUDGET)
    consume(policy, 0, 8 * MiB)
    assert policy.window == 8 * MiB
    assert policy.target(8 * MiB, 100 * MiB) == 16
    assert policy.target(8 * MiB + 1, 100 * MiB) == 17  # a partly read block counts
    assert policy.target(8 * MiB, 9 * MiB + 5) == 10  # the range ends first


def test_read_ahead_is_topped_up_a_part_at_a_time() -> None:
    policy = ReadAhead(TUNING, BUDGET)
    consume(policy, 0, 64 * MiB)  # window 64 MiB: parts of 5 blocks
    assert policy.per_request() == 5
    end = 100 * MiB
    assert policy.top_up(pinned=0, front=20, target=20, end=end)  # the reader has nothing
    assert not policy.top_up(pinned=5, front=30, target=34, end=end)  # 4 missing: wait
    assert policy.top_up(pinned=5, front=30, target=35, end=end)  # a part's worth missing
    # the last blocks of a range go out at once, however few
    assert policy.top_up(pinned=5, front=99, target=100, end=end)
    assert not policy.top_up(pinned=5, front=100, target=100, end=end)


def test_a_window_goes_out_as_many_gets_in_parallel() -> None:
    policy = ReadAhead(TUNING, BUDGET)
    consume(policy, 0, 3 * MiB)
    assert policy.window == 4 * MiB
    assert policy.per_request() == 2  # two GETs of two blocks
    consume(policy, 3 * MiB, 100 * MiB)
    assert policy.window == 64 * MiB
    assert policy.per_request() == 64 // GETS_PER_WINDOW  # 5 blocks: 64 MiB / 12
    big = ReadAhead(Tuning(part_size=8 * MiB, max_window=512 * MiB), 8192 * MiB)
    consume(big, 0, 1024 * MiB)
    assert big.per_request() == 8  # capped by part_size


# ---- drop-behind ---------------------------------------------------------------------------


def test_a_streaming_reader_alone_drops_what_it_consumed_except_block_0() -> None:
    policy = ReadAhead(TUNING, BUDGET)
    keeps = consume(policy, 0, 12 * MiB)
    assert keeps[:8] == [True] * 8  # the first streaming_after bytes stay cached
    assert keeps[8:] == [False] * 4
    assert policy.seek(0)
    assert consume(policy, 0, MiB) == [True]  # after a seek, cached again


def test_block_0_and_blocks_another_reader_uses_are_kept() -> None:
    policy = ReadAhead(TUNING, BUDGET)
    consume(policy, 0, 12 * MiB)
    assert consume(policy, 12 * MiB, 14 * MiB, shared=True) == [True, True]
    assert not policy.seek(14 * MiB)
    assert consume(policy, 14 * MiB, 15 * MiB) == [False]
    # block 0 stays cached even for a streaming reader: re-opening costs no request
    streaming = ReadAhead(TUNING, BUDGET)
    streaming.consumed(3, 3 * MiB, 12 * MiB, shared=False)  # 9 MiB read: streaming
    assert streaming.consumed(0, 0, MiB, shared=False) is True
    assert streaming.consumed(1, MiB, 2 * MiB, shared=False) is False


def test_a_lone_reader_gets_a_quarter_of_the_budget_and_a_crowd_an_eighth_each() -> None:
    tuning = Tuning(max_window=256 * MiB)
    assert window_cap(tuning, 1024 * MiB, readers=FEW_READERS) == 256 * MiB
    assert window_cap(tuning, 1024 * MiB, readers=FEW_READERS + 1) == 128 * MiB
    policy = ReadAhead(tuning, 1024 * MiB)
    policy.readers(1)
    consume(policy, 0, 600 * MiB)
    assert policy.window == 256 * MiB
    policy.readers(3)  # others started: the window comes down at once
    assert policy.window == 128 * MiB
    consume(policy, 600 * MiB, 1000 * MiB)
    assert policy.window == 128 * MiB
    policy.readers(1)  # alone again: it may grow back
    consume(policy, 1000 * MiB, 1300 * MiB)
    assert policy.window == 256 * MiB

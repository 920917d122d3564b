"""Staggered readers: each reads the whole object once, from its own offset, checked.

The disk cache's memory workload must be the worst case for a memory target: readers that
never read the same block at the same time. Each reader covers the object exactly once (to
the end from its start, then the start up to it), and a range answered from the wrong place
fails the run rather than passing bytes that were never checked.
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer

from bench import reads
from bench.workloads import Target
from tests.bench.rangeserver import SIZE, ranged_app

READERS = 4


async def run(shift_piece_at: int | None = None) -> tuple[list[str], float]:
    app, seen = ranged_app(shift_piece_at)
    async with TestServer(app) as server:
        target = Target("bucketdav", str(server.make_url("/")), s3=False)
        sample = await reads.staggered_readers("obj", SIZE, READERS)(target, 0)
    return seen, sample.served


async def test_each_reader_reads_the_whole_object_once_from_its_own_offset() -> None:
    seen, served = await run()
    starts = [at for at, _ in reads.pieces(0, SIZE, READERS)]
    expected = [f"bytes={at}-{SIZE - 1}" for at in starts]
    expected += [f"bytes=0-{at - 1}" for at in starts if at]
    assert sorted(seen) == sorted(expected)
    assert len(set(starts)) == READERS
    assert served == SIZE * READERS


async def test_a_range_from_the_wrong_offset_fails_the_run() -> None:
    second = reads.pieces(0, SIZE, READERS)[1][0]
    with pytest.raises(RuntimeError, match="wrong bytes"):
        await run(shift_piece_at=second)

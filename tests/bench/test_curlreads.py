"""The workers' sequential readers through curl read every slice once and check every byte
after the clock: a server that answers one slice from the wrong offset fails the run."""

from __future__ import annotations

import shutil

import pytest
from aiohttp.test_utils import TestServer

from bench import curlreads, reads
from tests.bench.test_limit import SIZE, ranged_app

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="curl is not installed")


async def test_every_slice_is_read_once() -> None:
    app, seen = ranged_app()
    assert CURL is not None
    async with TestServer(app) as server:
        sample = await curlreads.curl_readers(CURL, str(server.make_url("/obj")), SIZE, 4)
    assert sorted(seen) == sorted(f"bytes={a}-{a + n - 1}" for a, n in reads.pieces(0, SIZE, 4))
    assert sample.served == SIZE and sample.requests == 4 and sample.metrics["mb_s"] > 0


async def test_a_slice_from_the_wrong_offset_fails_the_run() -> None:
    app, _ = ranged_app(shift_piece_at=reads.pieces(0, SIZE, 4)[2][0])
    assert CURL is not None
    async with TestServer(app) as server:
        with pytest.raises(RuntimeError, match="wrong bytes"):
            await curlreads.curl_readers(CURL, str(server.make_url("/obj")), SIZE, 4)

"""The limit contender and the CPU meter measure what they claim.

The limit reads an object as 8 ranged GETs at once: each piece must be checked at its own
offset, so a server that answers one piece from the wrong place fails the run instead of
setting a "limit" the gateway is then judged against. The CPU meter must count the whole
process tree, a child that has already ended included (workers, rclone's helpers).
"""

from __future__ import annotations

import subprocess
import sys
import time

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench import reads, servers
from tests.bench.rangeserver import SIZE, ranged_app


async def read(app: web.Application, offset: int, length: int) -> tuple[float, float]:
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        return await reads.parallel_ranges(http, str(server.make_url("/obj")), offset, length,
                                           reads.LIMIT_STREAMS)


async def test_the_limit_reads_every_piece_once_and_checks_it() -> None:
    app, seen = ranged_app()
    seconds, ttfb = await read(app, 0, SIZE)
    assert 0 < ttfb <= seconds
    expected = [f"bytes={a}-{a + n - 1}" for a, n in reads.pieces(0, SIZE, 8)]
    assert sorted(seen) == sorted(expected) and len(expected) == 8


async def test_a_piece_from_the_wrong_offset_fails_the_read() -> None:
    third = reads.pieces(0, SIZE, 8)[2][0]
    with pytest.raises(RuntimeError, match="wrong bytes"):
        await read(ranged_app(shift_piece_at=third)[0], 0, SIZE)


BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"


def test_cpu_seconds_count_the_process_tree_and_reaped_children() -> None:
    # The parent burns, starts a child that burns and waits for it, then sleeps.
    script = (BURN + "import subprocess, sys\n"
              f"subprocess.run([sys.executable, '-c', {BURN!r}], check=True)\n"
              "print('done', flush=True)\ntime.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"done\n"
        time.sleep(0.1)
        assert servers.cpu_seconds(proc.pid) >= 0.75  # 0.4 s each, less the clock tick
    finally:
        proc.kill()
        proc.communicate()

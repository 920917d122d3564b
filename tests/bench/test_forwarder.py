"""The forwarder contender: direct S3 requests through one more process that only forwards
bytes, started and addressed the way a run does it. It stands where bucketdav stands (in
front of the shaping proxy), so the 4 KiB GETs show what a hop alone costs on the same cores.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import aiohttp

from bench import dataset, plan
from bench.runner import FORWARDER, Rig
from bench.servers import Proxy, Service
from tests.bench.backend import RecordingBackend
from tests.bench.options import options


def standing_in(name: str, port: int, log: Path) -> Service:
    """A service the rig only addresses (its URL), never starts or stops."""
    return Service(name, cast(Any, None), port, log)


async def test_a_run_starts_the_forwarder_in_front_of_the_shaping_proxy(tmp_path: Path) -> None:
    shaping = RecordingBackend()  # stands for the shaping proxy: the forwarder's backend
    await shaping.start()
    (tmp_path / "logs").mkdir()
    rig = Rig(options(), tmp_path, standing_in("s3rver", 1, tmp_path / "s3rver.log"),
              Proxy(standing_in("proxy", shaping.port, tmp_path / "proxy.log"), 0))
    (small,) = [w for w in plan.build(dataset.QUICK) if w.key == "small"]
    forwarder = await asyncio.to_thread(rig.start, FORWARDER, small)
    assert forwarder is not None
    try:
        # A hop and nothing else: no latency added, no pacing.
        assert forwarder.proc.args[-4:] == ["--bandwidth", "0", "--latency", "0"]
        target = rig.target(FORWARDER, forwarder)
        assert target.s3 and target.base == f"{forwarder.url}/{dataset.BUCKET}/"
        async with aiohttp.ClientSession() as http, http.get(target.url("small/00000.bin")) as r:
            body = await r.read()
    finally:
        await asyncio.to_thread(forwarder.stop)
        await shaping.close()
    assert bytes(shaping.received).startswith(b"GET /bench/small/00000.bin HTTP/1.1\r\n")
    assert body == bytes(shaping.sent)[-len(body):] and len(body) == 1010


def test_only_the_small_gets_measure_the_forwarder() -> None:
    with_forwarder = [w.key for w in plan.build(dataset.FULL) if FORWARDER in w.contenders]
    assert with_forwarder == ["small"]
    (small,) = [w for w in plan.build(dataset.FULL) if w.key == "small"]
    assert {"direct", "bucketdav"} <= set(small.contenders)

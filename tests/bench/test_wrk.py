"""The workers' 4 KiB GETs through wrk ask for each key once and check every answer.

wrk's Lua script hands out the keys in order and compares each body with the expected one:
a server that answers one key wrongly fails the run, and a run long enough to come back to
a key says so (an answer from a cache would flatter the server). Against a small aiohttp
server here; needs the wrk binary (scripts/test and bench/run install it: a missing one
fails these tests rather than skipping them).
"""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench import dataset, wrk
from bench.workloads import Target

SIZE = 4 * dataset.KiB


def app(wrong_key: int | None = None) -> tuple[web.Application, list[int]]:
    """Serves ``/bench/many/<n>.bin`` with the benchmark's small body (one byte off for
    ``wrong_key``); records the keys asked for."""
    seen: list[int] = []
    body = dataset.content(0, SIZE)

    async def get(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        seen.append(n)
        return web.Response(body=dataset.content(1, SIZE) if n == wrong_key else body)

    application = web.Application()
    application.router.add_get("/bench/many/{n}.bin", get)
    return application, seen


async def drive(application: web.Application, keys: int) -> wrk.Sample:
    found = wrk.binary()
    assert found is not None
    async with TestServer(application) as server:
        target = Target("direct", str(server.make_url("/bench/")), s3=True)
        return await wrk.run_wrk(found, target, dataset.MANY_FORMAT, keys, SIZE, 4, 1)


async def test_each_key_is_asked_for_once_in_order() -> None:
    application, seen = app()
    sample = await drive(application, 1_000_000)
    assert sample.requests > 0 and sample.metrics["rps"] > 0
    assert sample.served == SIZE * sample.requests
    assert len(seen) == len(set(seen)) >= sample.requests
    # wrk may build one request it never sends first: the keys run on from key 0 or 1
    assert sorted(seen) == list(range(min(seen), min(seen) + len(seen))) and min(seen) <= 1
    assert sample.notes == []


async def test_one_wrong_body_fails_the_run() -> None:
    application, _ = app(wrong_key=3)
    with pytest.raises(RuntimeError, match="1 wrong answers"):
        await drive(application, 1_000_000)


async def test_a_run_that_comes_back_to_a_key_says_so() -> None:
    application, seen = app()
    sample = await drive(application, 5)
    assert set(seen) == set(range(5))
    assert any("keys repeated" in note for note in sample.notes)


def test_no_result_line_is_a_failure() -> None:
    with pytest.raises(RuntimeError, match="no result"):
        wrk.parse("Running 1s test @ http://127.0.0.1:1/\nunable to connect\n")


def test_socket_errors_fail_the_run() -> None:
    result: dict[str, float | str] = {
        "requests": 10, "duration_us": 1e6, "issued": 10, "bad": 0, "first_bad": "",
        "p50_us": 900, "p99_us": 1000, "connect": 0, "read": 2, "write": 0, "timeout": 0}
    with pytest.raises(RuntimeError, match="read"):
        wrk.sample(result, 100, SIZE)
    result["read"] = 0
    assert wrk.sample(result, 100, SIZE).metrics == {"rps": 10.0, "p50_ms": 0.9,
                                                     "seconds": 1.0}

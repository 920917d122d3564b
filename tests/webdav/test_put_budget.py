"""A PUT's announced length against the store's limits and the memory budget (SEMANTICS,
PUT): past the store's largest object (5 TiB), or needing a smallest legal part (10,000
parts at most) the budget cannot hold, it is refused with 413 as the first reply, before
``100 Continue``, so its body is never asked for; the same head with a length that fits
gets its 100. Client noise is held to the same maximum.
"""

from __future__ import annotations

import pytest

from gateway.settings import EngineSettings
from tests.apps import memory_app, serving
from tests.test_expect import first_reply

TiB = 1024**4


def put_head(path: str, length: int, *, chunked: bool = False) -> bytes:
    sized = (["Transfer-Encoding: chunked", f"X-Expected-Entity-Length: {length}"] if chunked
             else [f"Content-Length: {length}"])
    lines = [f"PUT {path} HTTP/1.1", "Host: x", *sized, "Expect: 100-continue"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "x-expected"])
@pytest.mark.parametrize("path", ["/big.bin", "/.DS_Store"])
async def test_a_length_past_the_stores_largest_object_is_413_before_100_continue(
    chunked: bool, path: str
) -> None:
    built = memory_app(engine=EngineSettings(memory_target=1024))  # holds 525 MiB parts
    async with serving(built.app) as url:
        refused = await first_reply(url, put_head(path, 10**15, chunked=chunked))
        allowed = await first_reply(url, put_head(path, 5 * TiB, chunked=chunked))
    assert refused.status == 413
    assert b"maximum object size (5 TiB)" in refused.body
    assert allowed.status == 100
    assert built.stores["/"].calls["create_upload"] == built.stores["/"].calls["put"] == 0


async def test_a_length_whose_smallest_part_the_budget_cannot_hold_is_413_before_100() -> None:
    built = memory_app(engine=EngineSettings(memory_target=86))  # 64.5 MiB of buffers
    async with serving(built.app) as url:
        # 1 TB: parts of at least 100 MB; 600 GB: parts of 60 MB, which 64.5 MiB holds.
        refused = await first_reply(url, put_head("/tera.bin", 10**12))
        allowed = await first_reply(url, put_head("/tera.bin", 600 * 10**9))
    assert refused.status == 413
    assert b"--memory-target 128 or more" in refused.body  # 96 MiB of buffers and a reserve
    assert allowed.status == 100
    assert built.stores["/"].calls["create_upload"] == 0

"""The limit of a PUT uploads what it claims: every part once, tiling the object, each with the
bytes at its offset, completed in part order with each part's ETag; a failure aborts the
upload, so the backend keeps no parts behind a "limit" that never finished."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench import dataset, uploads

SIZE = 3 * dataset.MiB + 5  # the last part shorter
PART = dataset.MiB


def test_parts_tile_the_object_numbered_from_one() -> None:
    found = uploads.parts(SIZE, PART)
    assert [n for n, _, _ in found] == [1, 2, 3, 4]
    assert [(at, n) for _, at, n in found] == [(0, PART), (PART, PART), (2 * PART, PART),
                                              (3 * PART, 5)]
    assert uploads.parts(2 * PART, PART) == [(1, 0, PART), (2, PART, PART)]


def test_the_complete_body_lists_every_part_in_order_with_its_etag() -> None:
    body = uploads.complete_body(['"a"', '"b"'])
    assert body == (b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"
                    b'"a"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>"b"</ETag></Part>'
                    b"</CompleteMultipartUpload>")


@dataclass
class Store:
    parts: dict[int, bytes] = field(default_factory=dict)
    stored: bytes | None = None  # the object, once completed
    aborted: bool = False
    flight: int = 0
    most: int = 0  # UploadParts in flight at once, at most


def store_app(fail_part: int | None = None) -> tuple[web.Application, Store]:
    """A multipart store in memory; with ``fail_part``, that UploadPart answers 500."""
    state = Store()

    async def post(request: web.Request) -> web.Response:
        if "uploads" in request.query:
            return web.Response(body=b"<R><UploadId>u-1</UploadId></R>")
        assert request.query["uploadId"] == "u-1"
        listed = re.findall(rb"<PartNumber>(\d+)</PartNumber><ETag>([^<]*)</ETag>",
                            await request.read())
        numbers = [int(n) for n, _ in listed]
        assert numbers == sorted(state.parts) and all(
            tag.decode() == hashlib.md5(state.parts[int(n)]).hexdigest() for n, tag in listed)
        state.stored = b"".join(state.parts[n] for n in numbers)
        return web.Response(body=b"<CompleteMultipartUploadResult/>")

    async def put(request: web.Request) -> web.Response:
        number = int(request.query["partNumber"])
        state.flight += 1
        state.most = max(state.most, state.flight)
        body = await request.read()
        await asyncio.sleep(0.01)
        state.flight -= 1
        if number == fail_part:
            return web.Response(status=500)
        state.parts[number] = body
        return web.Response(headers={"ETag": hashlib.md5(body).hexdigest()})

    async def delete(request: web.Request) -> web.Response:
        state.aborted = request.query.get("uploadId") == "u-1"
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/obj", post)
    app.router.add_put("/obj", put)
    app.router.add_delete("/obj", delete)
    return app, state


async def upload(app: web.Application) -> tuple[float, float]:
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        return await uploads.multipart(http, str(server.make_url("/obj")), SIZE, PART, 2)


async def test_the_limit_uploads_every_part_at_its_offset_and_completes_in_order() -> None:
    app, state = store_app()
    seconds, completing = await upload(app)
    assert 0 < completing < seconds
    assert state.stored == dataset.content(0, SIZE)
    assert state.most == 2 and not state.aborted


async def test_a_failed_part_fails_the_upload_and_aborts_it() -> None:
    app, state = store_app(fail_part=3)
    with pytest.raises(RuntimeError, match=r"UploadPart 3 .* answered 500"):
        await upload(app)
    assert state.aborted and state.stored is None

"""A PUT announcing its length twice (SEMANTICS, PUT: "Content-Length and
X-Expected-Entity-Length both present and different: 400"): the client cannot know which
length it sends, so nothing is written, and the refusal comes before the body."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.apps import app_for, read_reply, serving
from tests.memorystore import MemoryStore


@pytest.mark.parametrize("announced", ["9", "11", "0"])
async def test_content_length_and_x_expected_entity_length_that_differ_are_400(
    aiohttp_client: Any, announced: str
) -> None:
    store = MemoryStore()
    client = await aiohttp_client(app_for(store))
    resp = await client.put("/f.bin", data=b"0123456789",
                            headers={"X-Expected-Entity-Length": announced})
    assert resp.status == 400
    text = await resp.text()
    assert "Content-Length 10" in text and f"X-Expected-Entity-Length {announced}" in text
    assert store.objects == {} and store.uploads == {}
    assert store.calls["put"] == store.calls["create_upload"] == 0


async def test_the_same_length_announced_twice_is_stored(aiohttp_client: Any) -> None:
    store = MemoryStore()
    client = await aiohttp_client(app_for(store))
    resp = await client.put("/f.bin", data=b"0123456789",
                            headers={"X-Expected-Entity-Length": "10"})
    assert resp.status == 201
    assert store.objects["f.bin"].data == b"0123456789"


async def test_differing_lengths_are_refused_before_100_continue() -> None:
    store = MemoryStore()
    async with serving(app_for(store)) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"PUT /f.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                     b"X-Expected-Entity-Length: 12\r\nExpect: 100-continue\r\n\r\n")
        await writer.drain()
        reply = await asyncio.wait_for(read_reply(reader), 20)  # the final answer, no 100
        writer.close()
    assert reply.status == 400
    assert store.objects == {}

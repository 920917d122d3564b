"""Reads never wait on the state store: GET and HEAD of an object make no state call, even
when the state store is one other processes share (with ``--workers`` it is Redis, and a
round trip per read would cost every GET a network hop)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, cast

import aiohttp
from aiohttp.test_utils import TestClient

from gateway.app import build_gateway, make_app
from gateway.state import MemoryState, StateStore
from tests.apps import settings_for
from tests.memorystore import MemoryStore

Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]
MakeClient = Callable[..., Awaitable[Client]]


class RecordingState:
    """A memory state store behind a proxy that records each call: not a ``MemoryState``
    itself, so the gateway treats it as shared by other processes, as it would Redis."""

    def __init__(self) -> None:
        self.inner = MemoryState()
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return await attr(*args, **kwargs)

        return recorded


async def serve(aiohttp_client: MakeClient, body: bytes) -> tuple[Client, RecordingState]:
    """A gateway over one object, ``/data.bin``, with nothing recorded yet."""
    store = MemoryStore()
    store.put_sync("data.bin", body)
    state = RecordingState()
    gateway = build_gateway(settings_for(), [store], cast(StateStore, state))
    client = await aiohttp_client(make_app(gateway))
    state.calls.clear()  # start-up may ping or subscribe
    return client, state


async def test_get_and_head_make_no_state_call(aiohttp_client: MakeClient) -> None:
    client, state = await serve(aiohttp_client, bytes(range(256)) * 4096)

    for request in (
        client.get("/data.bin"),
        client.head("/data.bin"),
        client.get("/data.bin", headers={"Range": "bytes=1000-5000"}),
        client.get("/data.bin", headers={"Range": "bytes=-10"}),
        client.get("/missing.bin"),
    ):
        async with request as resp:
            await resp.read()
            assert resp.status in (200, 206, 404)

    assert state.calls == []


async def test_the_recorder_sees_what_does_ask_the_state_store(aiohttp_client: MakeClient) -> None:
    """The control: an allprop PROPFIND reads the file's dead properties, and is seen."""
    client, state = await serve(aiohttp_client, b"x")
    async with client.request("PROPFIND", "/data.bin", headers={"Depth": "0"}) as resp:
        assert resp.status == 207
    assert any(call.startswith("props_get") for call in state.calls)

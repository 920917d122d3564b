"""Fixtures of the state contract suite: one real ``redis-server`` for the session, and
``connect``, which opens clients of one shared state on either backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from gateway.state import MemoryState, StateStore, open_state
from tests.servers import RedisServer, run_redis

Connect = Callable[[], Awaitable[StateStore]]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with run_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
async def connect(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Connect]:
    """Each call is one more client of the same state: with ``memory`` the one store of
    this process, with ``redis`` a new client object (its own connections) on one fresh
    namespace of the session's server."""
    opened: list[StateStore] = []
    if request.param == "memory":
        store = MemoryState()
        opened.append(store)

        async def connect() -> StateStore:
            return store
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        namespace = f"test-{uuid.uuid4().hex}"

        async def connect() -> StateStore:
            client = await open_state(server.url, namespace=namespace)
            opened.append(client)
            return client

    yield connect
    for client in opened:
        await client.close()

"""What only the Redis backend has: its URL and password, and a server that goes away
(stopped, or hung) and comes back. Each test runs its own ``redis-server``."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from gateway.errors import StateUnavailable, status_for
from gateway.settings import SettingsError
from gateway.state import (
    EVERYTHING,
    PASSWORD_ENV,
    PASSWORD_FILE_ENV,
    Depth,
    Invalidation,
    LockConflict,
    LockLimit,
    LockLimits,
    LockNotOwned,
    LockRecord,
    MemoryState,
    StateStore,
    open_state,
)
from tests.servers import RedisServer, free_port, run_redis

S = "scope"


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_an_unreachable_url_fails_fast_with_one_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with pytest.raises(StateUnavailable) as info:
        await open_state(url)
    assert time.monotonic() - started < 3
    assert info.value.message.startswith(f"cannot reach the state store {url}: ")
    assert "\n" not in info.value.message and status_for(info.value) == 503


@pytest.mark.parametrize("url", [
    "mem", "http://127.0.0.1:6379/0", "redis://", "redis://127.0.0.1/0",
    "redis://127.0.0.1:port/0", "redis://127.0.0.1:6379/db", "redis://:pw@127.0.0.1:x/0",
])
async def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(SettingsError) as info:
        await open_state(url)
    assert "--state" in str(info.value) and "pw" not in str(info.value)


async def test_the_password_comes_from_the_url_env_or_a_file(tmp_path: Path) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    (tmp_path / "pw").write_text(secret + "\n")
    with run_redis(tmp_path, "--requirepass", secret) as server:
        with pytest.raises(StateUnavailable) as info:
            await open_state(server.url, env={})
        assert secret not in info.value.message
        with pytest.raises(StateUnavailable):
            await open_state(server.url, env={PASSWORD_ENV: "wrong"})
        host = server.url.removeprefix("redis://")
        for url, env in [
            (server.url, {PASSWORD_ENV: secret}),
            (server.url, {PASSWORD_FILE_ENV: str(tmp_path / "pw")}),
            (f"redis://:{secret}@{host}", {}),
            (f"redis://default:{secret}@{host}", {PASSWORD_ENV: "ignored: the URL has one"}),
        ]:
            store = await open_state(url, env=env)
            try:
                await store.ping()
                assert secret not in store.description
            finally:
                await store.close()
        with pytest.raises(SettingsError):
            await open_state(server.url, env={PASSWORD_FILE_ENV: str(tmp_path / "none")})


def operations(store: StateStore) -> list[Callable[[], Awaitable[Any]]]:
    async def guarded() -> None:
        async with store.guard(S, "k", wait=0):
            pass

    return [
        lambda: store.acquire(S, "b", exclusive=True, depth="0", owner="", principal="p",
                              timeout=60),
        lambda: store.covering(S, "a"),
        lambda: store.props_get(S, "k"),
        lambda: store.props_patch(S, "k", {"{n}x": "1"}, []),
        lambda: store.noise_get(S, "._k"),
        lambda: store.publish(S, "k"),
        guarded,
    ]


async def test_redis_stopped_then_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    stores: list[StateStore] = []
    try:
        namespace = uuid.uuid4().hex
        a = await open_state(server.url, namespace=namespace)
        b = await open_state(server.url, namespace=namespace)
        stores += [a, b]
        seen: list[Invalidation] = []
        a.subscribe(seen.append)
        await a.acquire(S, "a", exclusive=True, depth="0", owner="", principal="p", timeout=60)

        server.stop()
        for store in (a, b):
            for operation in operations(store):
                started = time.monotonic()
                with pytest.raises(StateUnavailable) as info:
                    await operation()
                assert time.monotonic() - started < 1
                assert server.url in info.value.message and status_for(info.value) == 503
            assert not store.available
            assert not await store.healthy()

        server.start()  # the same port, empty (persistence is off in tests)
        await until(lambda: b.healthy())
        await until(lambda: asyncio.sleep(0, a.available))
        record = await b.acquire(S, "a", exclusive=True, depth="0", owner="", principal="p",
                                 timeout=60)
        assert [r.token for r in await a.covering(S, "a")] == [record.token]
        await until(lambda: asyncio.sleep(0, EVERYTHING in seen))  # events may have been missed
        await b.publish(S, "after")
        await until(lambda: asyncio.sleep(0, Invalidation(S, "after") in seen))
    finally:
        for store in stores:
            await store.close()
        server.stop()


async def test_a_hung_redis_costs_a_short_timeout(tmp_path: Path) -> None:
    with run_redis(tmp_path) as server:
        store = await open_state(server.url, namespace=uuid.uuid4().hex, timeout=0.5)
        assert server.process is not None
        try:
            os.kill(server.process.pid, signal.SIGSTOP)
            started = time.monotonic()
            with pytest.raises(StateUnavailable):
                await store.props_get(S, "k")
            assert time.monotonic() - started < 1.5
            with pytest.raises(StateUnavailable):  # known down: refused at once
                await store.props_get(S, "k")
            assert time.monotonic() - started < 1.5
            with pytest.raises(StateUnavailable) as info:  # and a gateway starting now
                await open_state(server.url, timeout=0.5)
            assert info.value.message == (
                f"cannot reach the state store {server.url}: no answer within 0.5 s")
            os.kill(server.process.pid, signal.SIGCONT)
            await until(lambda: asyncio.sleep(0, store.available))
            assert await store.props_get(S, "k") == {}
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
            await store.close()


async def test_a_foreign_message_on_the_channel_does_not_stop_events(
    redis_server: RedisServer,
) -> None:
    namespace = uuid.uuid4().hex
    store = await open_state(redis_server.url, namespace=namespace)
    try:
        seen: list[Invalidation] = []
        store.subscribe(seen.append)
        raw = await open_state(redis_server.url, namespace=namespace)
        try:
            from redis.asyncio import Redis

            client = Redis.from_url(redis_server.url)
            await client.publish(f"{namespace}:events", b"\xffnot json")
            await client.publish(f"{namespace}:events", b'{"scope": 1}')
            await client.aclose()
            await raw.publish(S, "after")
        finally:
            await raw.close()
        await until(lambda: asyncio.sleep(0, seen == [Invalidation(S, "after")]))
    finally:
        await store.close()


async def test_rediss_verifies_the_server_with_the_ca_named_in_the_url(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls_port = free_port()
    with run_redis(tmp_path, "--tls-port", str(tls_port), "--tls-auth-clients", "no",
                   "--tls-cert-file", str(tmp_path / "cert.pem"),
                   "--tls-key-file", str(tmp_path / "key.pem"),
                   "--tls-ca-cert-file", str(tmp_path / "ca.pem")):
        url = f"rediss://127.0.0.1:{tls_port}/0"
        with pytest.raises(StateUnavailable) as info:  # a server this machine does not trust
            await open_state(url)
        assert info.value.message.startswith(f"cannot reach the state store {url}")
        store = await open_state(f"{url}?ssl_ca_certs={tmp_path / 'ca.pem'}",
                                 namespace=uuid.uuid4().hex)
        try:
            seen: list[Invalidation] = []
            store.subscribe(seen.append)
            record = await store.acquire(S, "a", exclusive=True, depth="0", owner="",
                                         principal="p", timeout=60)
            assert await store.get(record.token) == record
            await store.publish(S, "k")
            await until(lambda: asyncio.sleep(0, seen == [Invalidation(S, "k")]))
        finally:
            await store.close()


RACER = """
import asyncio, sys, time
from gateway.state import LockConflict, open_state

async def main(url, namespace, me, start):
    store = await open_state(url, namespace=namespace)
    time.sleep(max(0.0, start - time.time()))
    for n in range(30):
        root = f"r{n}" if me % 2 else f"r{n}/child"  # parents at infinity against children
        try:
            await store.acquire("scope", root, exclusive=True, depth="infinity", owner="",
                                principal=f"p{me}", timeout=60)
            print(n)
        except LockConflict:
            pass
    await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
"""


def test_processes_racing_for_locks_get_one_each(redis_server: RedisServer) -> None:
    """Six processes take the same 30 locks (or a child of them) at once: every lock has
    exactly one winner, whatever the interleaving of the processes."""
    namespace, start = uuid.uuid4().hex, time.time() + 3
    racers = [
        subprocess.Popen([sys.executable, "-c", RACER, redis_server.url, namespace, str(i),
                          str(start)], stdout=subprocess.PIPE, text=True)
        for i in range(6)
    ]
    won = [int(line) for racer in racers for line in racer.communicate(timeout=60)[0].split()]
    assert all(racer.returncode == 0 for racer in racers)
    assert sorted(won) == list(range(30))


PATHS = ["", "a", "a/b", "a/b/c", "a/x", "ab", "b"]


def shape(records: list[LockRecord], tokens: dict[str, int]) -> list[tuple[Any, ...]]:
    """Locks as both backends must agree on them (tokens by their order of grant)."""
    return sorted((tokens[r.token], r.root, r.depth, r.exclusive) for r in records)


@pytest.mark.parametrize("seed", range(8))
async def test_memory_and_redis_agree_on_random_lock_histories(
    redis_server: RedisServer, seed: int
) -> None:
    """The same random history of LOCK, UNLOCK and DELETE on both backends: every grant,
    conflict and cap decision and every lookup after it are the same."""
    rng = random.Random(seed)
    memory = MemoryState()
    redis = await open_state(redis_server.url, namespace=uuid.uuid4().hex)
    limits = LockLimits(max_per_resource=2, max_per_principal=4)
    granted: list[tuple[str, str]] = []  # (memory token, redis token)
    order: dict[str, int] = {}
    try:
        for _ in range(60):
            roll = rng.random()
            if roll < 0.6:
                exclusive = rng.random() < 0.5
                depth: Depth = rng.choice(["0", "infinity"])
                principal, root = rng.choice(["p", "q"]), rng.choice(PATHS)
                results: list[LockRecord | str] = []
                for store in (memory, redis):
                    try:
                        results.append(await store.acquire(
                            S, root, exclusive=exclusive, depth=depth, owner="",
                            principal=principal, timeout=60, limits=limits))
                    except (LockConflict, LockLimit) as e:
                        results.append(type(e).__name__)
                if isinstance(results[0], LockRecord) and isinstance(results[1], LockRecord):
                    granted.append((results[0].token, results[1].token))
                    order[results[0].token] = order[results[1].token] = len(order)
                else:
                    assert results[0] == results[1], (root, exclusive, depth, principal)
            elif roll < 0.8 and granted:
                pair = granted[rng.randrange(len(granted))]
                who = rng.choice(["p", "q"])
                outcomes: list[bool | str] = []
                for store, token in zip((memory, redis), pair, strict=True):
                    try:
                        outcomes.append(await store.release(token, who))
                    except LockNotOwned:
                        outcomes.append("LockNotOwned")
                assert outcomes[0] == outcomes[1]
                if outcomes[0] is True:
                    granted.remove(pair)
            else:
                path, recursive = rng.choice(PATHS), rng.random() < 0.5
                assert await memory.drop(S, path, recursive=recursive) == await redis.drop(
                    S, path, recursive=recursive)
                live = {t for t, _ in granted if await memory.get(t)}
                granted = [(m, r) for m, r in granted if m in live]
            for path in PATHS:
                assert shape(await memory.covering(S, path), order) == shape(
                    await redis.covering(S, path), order)
                assert shape(await memory.below(S, path), order) == shape(
                    await redis.below(S, path), order)
            assert await memory.count() == await redis.count()
    finally:
        await redis.close()

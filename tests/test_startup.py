"""Importing bucketdav changes nothing in the process: what the app needs while it runs
(the filter that keeps client faults out of the error log, the bcrypt threads) starts
with the app and ends with it."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading

import pytest
from aiohttp import ClientSession

from gateway.settings import AuthSettings, LimitSettings, UserSettings
from tests.apps import memory_app, raw_request, serving
from tests.auth.support import basic, bcrypt_hash

# gateway.cli imports every layer: server, app, front-ends, auth, ops, engine, storage.
IMPORT_EVERYTHING = """
import gc, logging, threading
from concurrent.futures import Executor
import gateway.cli
executors = sum(isinstance(o, Executor) for o in gc.get_objects())
print(len(logging.getLogger("aiohttp.server").filters), executors, threading.active_count())
"""


def test_importing_the_gateway_installs_and_starts_nothing() -> None:
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True,
                          text=True, check=True, timeout=120)
    filters, executors, threads = done.stdout.split()
    assert (filters, executors, threads) == ("0", "0", "1")


async def test_client_faults_stay_out_of_the_error_log_while_the_app_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    built = memory_app(limits=LimitSettings(max_header_bytes=1024))
    server_log = logging.getLogger("aiohttp.server")
    before = list(server_log.filters)
    with caplog.at_level(logging.INFO, logger="aiohttp.server"):
        async with serving(built.app) as url:
            assert len(server_log.filters) == len(before) + 1
            reply = await raw_request(url, "GET", "/", {"X-Big": "a" * 2000})
    assert reply.status == 400
    seen = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert seen and all(r.levelno == logging.INFO and not r.exc_info for r in seen)
    assert server_log.filters == before


def bcrypt_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("bcrypt")}


async def test_the_bcrypt_threads_end_with_the_app() -> None:
    built = memory_app(auth=AuthSettings(users=(UserSettings("alice", bcrypt_hash("pw")),)))
    before = bcrypt_threads()
    async with serving(built.app) as url, ClientSession() as session:
        async with session.get(url + "/", headers=basic("alice", "pw")) as resp:
            assert resp.status == 200
        started = bcrypt_threads() - before
        assert started
    for _ in range(200):
        if not any(t.is_alive() for t in started):
            break
        await asyncio.sleep(0.05)
    assert not any(t.is_alive() for t in started)

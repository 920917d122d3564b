"""Support for the operations tests (auth, limits, admin, logs): real apps over
MemoryStores, served in-process exactly as ``bucketdav serve`` serves them (same runner
options, same guarded listener), raw HTTP requests for byte-exact targets, and a runner
for real ``bucketdav serve`` processes whose output names their URLs.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

import bcrypt
from aiohttp import web

from gateway.app import build_gateway, make_app
from gateway.ops.limits import LIMITS
from gateway.server import GuardedSite, runner_options
from gateway.settings import (
    AuthSettings,
    EngineSettings,
    LimitSettings,
    OpsSettings,
    Policy,
    ServerSettings,
    Settings,
    ShareSettings,
    Source,
)
from tests.memorystore import MemoryStore

PERMISSIVE = Policy(allow_overwrite=True, allow_delete=True, allow_rename=True)


def bcrypt_hash(password: str) -> str:
    """A cheap (cost 4) bcrypt hash: tests check the logic, not the cost."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


def basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass
class Built:
    app: web.Application
    stores: dict[str, MemoryStore]  # by mount


def build_app(
    mounts: tuple[str, ...] = ("/",),
    *,
    auth: AuthSettings | None = None,
    limits: LimitSettings | None = None,
    policy: Policy = PERMISSIVE,
    server: ServerSettings | None = None,
    ops: OpsSettings | None = None,
) -> Built:
    """An app with one MemoryStore per mount (each source prefix ""), wired as in
    ``open_gateway``."""
    shares = tuple(ShareSettings(m, Source("s3", "bucket"), policy=policy) for m in mounts)
    settings = Settings(
        server or ServerSettings(),
        EngineSettings(metadata_ttl=0.001),
        shares,
        limits=limits or LimitSettings(),
        ops=ops or OpsSettings(),
        auth=auth or AuthSettings(),
    )
    stores = {m: MemoryStore(name=m) for m in mounts}
    app = make_app(build_gateway(settings, list(stores.values())))
    return Built(app, stores)


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (free port) the way ``gateway.server`` does; yields the
    base URL without a trailing slash."""
    runner = web.AppRunner(app, **runner_options(app))
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0, app[LIMITS])
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@dataclass
class RawReply:
    status: int
    headers: dict[str, str]
    body: bytes


def parse_reply(data: bytes) -> RawReply:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawReply(status, headers, body)


async def raw_request(
    base: str, method: str, target: str, headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> RawReply:
    """Send exactly ``method target`` (no client-side normalisation) and read the reply."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("PUT", "POST"):
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    return parse_reply(data)


# ---- real processes -----------------------------------------------------------------------

_SERVING = re.compile(r"serving .* at (https?://\S+?)/?$")
_ADMIN = re.compile(r"admin endpoints .* at (http://\S+?)/?$")


@dataclass
class Process:
    proc: subprocess.Popen[str]
    url: str = ""
    admin: str = ""  # "-" when the admin port could not be opened
    lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@contextmanager
def bucketdav(*args: str, env: dict[str, str] | None = None, timeout: float = 30.0
              ) -> Iterator[Process]:
    """``python -m gateway serve ARGS --port 0 --admin-port 0`` until the block ends."""
    cmd = [sys.executable, "-m", "gateway", "serve", *args]
    if "--port" not in args:
        cmd += ["--port", "0"]
    if "--admin-port" not in args and "--no-admin" not in args:
        cmd += ["--admin-port", "0"]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=full_env)
    process = Process(proc)
    started = threading.Event()
    wants_admin = "--no-admin" not in args

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            process.lines.append(line)
            if m := _SERVING.search(line.strip()):
                process.url = m.group(1)
            if m := _ADMIN.search(line.strip()):
                process.admin = m.group(1)
            if "no admin endpoints" in line:
                process.admin = "-"  # reported as unavailable: do not wait for it
            if process.url and (process.admin or not wants_admin):
                started.set()
        started.set()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        if not started.wait(timeout) or not process.url:
            proc.kill()
            proc.wait()
            thread.join(5)
            raise RuntimeError("bucketdav did not start:\n" + process.output())
        yield process
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        thread.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


def run_bucketdav(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run a ``bucketdav serve`` that is expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", "serve", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )

"""The admin port: liveness, readiness and metrics, apart from the shares.

On its own port (default 127.0.0.1:9180) so that no key in any bucket can collide with
these paths and so that they need no user: ``/livez`` says the process serves requests,
``/readyz`` that every share's store answers (``check()``, cached for a few seconds so a
probe storm cannot become a store storm; 503 while shutting down), ``/metrics`` is the
Prometheus text format from the app's own registry.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.errors import GatewayError
from gateway.ops.metrics import Metrics
from gateway.responses import plain
from gateway.storage.base import ObjectStore

READY_CACHE = 2.0  # seconds a readiness answer is reused
CHECK_TIMEOUT = 5.0  # seconds one store gets to answer check()


@dataclass
class Readiness:
    stores: list[tuple[str, ObjectStore]]  # (share mount, store)
    draining: bool = False
    _at: float = float("-inf")
    _problems: list[str] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def _check(self, mount: str, store: ObjectStore) -> str | None:
        try:
            await asyncio.wait_for(store.check(), CHECK_TIMEOUT)
        except GatewayError as exc:
            return f"{mount}: {exc.message}"
        except TimeoutError:
            return f"{mount}: the store did not answer in {CHECK_TIMEOUT:g} s"
        return None

    async def problems(self) -> list[str]:
        """What keeps the gateway from being ready (empty when ready)."""
        if self.draining:
            return ["shutting down"]
        async with self._lock:  # concurrent probes share one round of checks
            if time.monotonic() - self._at > READY_CACHE:
                found = await asyncio.gather(*(self._check(m, s) for m, s in self.stores))
                self._problems = [p for p in found if p is not None]
                self._at = time.monotonic()
            return list(self._problems)


READINESS = web.AppKey("bucketdav.readiness", Readiness)
METRICS = web.AppKey("bucketdav.metrics", Metrics)


async def livez(request: web.Request) -> web.StreamResponse:
    return plain(200, "ok")


async def readyz(request: web.Request) -> web.StreamResponse:
    problems = await request.app[READINESS].problems()
    if problems:
        return plain(503, "not ready: " + "; ".join(problems))
    return plain(200, "ready")


async def metrics(request: web.Request) -> web.StreamResponse:
    body = generate_latest(request.app[METRICS].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def make_admin_app(readiness: Readiness, registry_of: Metrics) -> web.Application:
    app = web.Application()
    app[READINESS] = readiness
    app[METRICS] = registry_of
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app

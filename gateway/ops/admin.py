"""The admin port: liveness, readiness and metrics, apart from the shares.

On its own port (default 127.0.0.1:9180) so that no key in any bucket can collide with
these paths and so that they need no user: ``/livez`` says the process serves requests,
``/readyz`` that every share's store answers (``check()``) and so does the state store
(``--state``; a shared one can be down while the stores are not), cached for a few seconds
so a probe storm cannot become a store storm; 503 while shutting down, ``/metrics`` is the
Prometheus text format from the app's own registry.

With ``--workers N`` the parent serves the admin port for the whole (``make_workers_admin_app``):
each worker runs its admin app on a private loopback port that the parent reads. ``/livez``
answers 200 while a worker serves, ``/readyz`` 200 when every worker serves and is ready,
``/metrics`` is the sum over the workers (``MetricsSum``) plus the parent's own
``bucketdav_worker*`` series.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from gateway.errors import GatewayError
from gateway.ops.metrics import Metrics
from gateway.ops.workers import Supervisor
from gateway.responses import plain
from gateway.state.base import StateStore
from gateway.storage.base import ObjectStore

READY_CACHE = 2.0  # seconds a readiness answer is reused
CHECK_TIMEOUT = 5.0  # seconds one store gets to answer check()


@dataclass
class Readiness:
    stores: list[tuple[str, ObjectStore]]  # (share mount, store)
    state: StateStore | None = None  # what the processes share (--state)
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

    async def _check_state(self) -> str | None:
        if self.state is None or await self.state.healthy():
            return None
        return _unavailable(self.state)

    async def problems(self) -> list[str]:
        """What keeps the gateway from being ready (empty when ready)."""
        if self.draining:
            return ["shutting down"]
        async with self._lock:  # concurrent probes share one round of checks
            if time.monotonic() - self._at > READY_CACHE:
                found = await asyncio.gather(self._check_state(),
                                             *(self._check(m, s) for m, s in self.stores))
                self._problems = [p for p in found if p is not None]
                self._at = time.monotonic()
            problems = list(self._problems)
        # A state store known to be down is said at once, not after the cached answer.
        down = self._state_down()
        if down is not None and down not in problems:
            problems.insert(0, down)
        return problems

    def _state_down(self) -> str | None:
        if self.state is None or self.state.available:
            return None
        return _unavailable(self.state)


def _unavailable(state: StateStore) -> str:
    return f"the state store ({state.description}) is unavailable"


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


# ---- several workers -------------------------------------------------------------------

SampleKey = tuple[str, tuple[tuple[str, str], ...]]  # sample name, sorted labels
MONOTONIC = frozenset({"counter", "histogram", "summary"})
WORKER_TIMEOUT = 5.0  # seconds one worker's admin port gets to answer the parent


@dataclass
class Family:
    name: str
    type: str
    documentation: str
    samples: dict[SampleKey, float] = field(default_factory=dict)


def parse_exposition(text: str) -> dict[str, Family]:
    """A worker's /metrics, by family; ``_created`` timestamps are left out (a sum of
    them means nothing)."""
    found: dict[str, Family] = {}
    for metric in text_string_to_metric_families(text):
        family = found.setdefault(
            metric.name, Family(metric.name, metric.type, metric.documentation))
        for sample in metric.samples:
            if sample.name.endswith("_created"):
                continue
            key = (sample.name, tuple(sorted(sample.labels.items())))
            family.samples[key] = family.samples.get(key, 0.0) + sample.value
    return found


def add_families(into: dict[str, Family], more: Iterable[Family],
                 only_monotonic: bool = False) -> None:
    for family in more:
        if only_monotonic and family.type not in MONOTONIC:
            continue
        total = into.setdefault(
            family.name, Family(family.name, family.type, family.documentation))
        for key, value in family.samples.items():
            total.samples[key] = total.samples.get(key, 0.0) + value


class _Families(Collector):
    def __init__(self, families: Iterable[Family]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        for family in self.families:
            metric = Metric(family.name, family.documentation, family.type)
            for (name, labels), value in sorted(family.samples.items()):
                metric.add_sample(name, dict(labels), value)
            yield metric


def render(families: Iterable[Family]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


class MetricsSum:
    """The workers' metrics added up. Counters and histograms of a worker that was
    replaced stay in the sum (as last read), so that totals never go down when a worker
    restarts and a rate() over them shows no false reset."""

    def __init__(self) -> None:
        self.retired: dict[str, Family] = {}
        self._last: dict[int, tuple[int, dict[str, Family]]] = {}  # slot: (pid, families)

    def total(self, scraped: dict[int, tuple[int, dict[str, Family]]]) -> dict[str, Family]:
        """``scraped``: slot -> (pid, its families) for the workers read just now."""
        for slot, (pid, families) in list(self._last.items()):
            if scraped.get(slot, (pid, None))[0] != pid:  # that worker is gone
                add_families(self.retired, families.values(), only_monotonic=True)
                del self._last[slot]
        self._last.update(scraped)
        total: dict[str, Family] = {}
        add_families(total, self.retired.values())
        for _, families in self._last.values():
            add_families(total, families.values())
        return total


def worker_families(supervisor: Supervisor,
                    scraped: dict[int, tuple[int, dict[str, Family]]]) -> list[Family]:
    """The parent's own series: how many workers, which pid each slot has, what each
    answered (how the kernel spreads connections), restarts."""
    up = Family("bucketdav_worker_up", "gauge", "a worker serving, by slot and pid")
    answered = Family("bucketdav_worker_http_requests", "counter",
                      "HTTP requests answered by the worker now in each slot")
    for slot, pid in supervisor.pids():
        if pid is not None:
            up.samples[("bucketdav_worker_up", (("pid", str(pid)), ("worker", str(slot))))] = (
                1.0 if slot in scraped else 0.0)
        if slot in scraped:
            requests = scraped[slot][1].get("bucketdav_http_requests")
            answered.samples[("bucketdav_worker_http_requests_total",
                              (("worker", str(slot)),))] = (
                sum(requests.samples.values()) if requests else 0.0)
    workers = Family("bucketdav_workers", "gauge", "worker processes configured (--workers)",
                     {("bucketdav_workers", ()): float(supervisor.count)})
    restarts = Family("bucketdav_worker_restarts", "counter", "workers restarted after dying",
                      {("bucketdav_worker_restarts_total", ()): float(supervisor.restarts)})
    return [workers, up, answered, restarts]


@dataclass
class WorkersAdmin:
    supervisor: Supervisor
    sums: MetricsSum = field(default_factory=MetricsSum)
    session: ClientSession | None = None

    async def ask(self, url: str, path: str) -> tuple[int, str]:
        assert self.session is not None
        try:
            async with self.session.get(url + path) as response:
                return response.status, (await response.text()).strip()
        except (ClientError, TimeoutError) as exc:
            return 503, f"its admin port does not answer ({exc.__class__.__name__})"

    async def each(self, path: str) -> list[tuple[int, tuple[int, str] | None]]:
        """(slot, (status, body)) of every worker; None for a slot not serving now."""
        urls = self.supervisor.admin_urls()
        answers = await asyncio.gather(
            *(self.ask(url, path) for _, url in urls if url is not None))
        found = iter(answers)
        return [(slot, next(found) if url is not None else None) for slot, url in urls]

    async def livez(self, request: web.Request) -> web.StreamResponse:
        if any(a is not None and a[0] == 200 for _, a in await self.each("/livez")):
            return plain(200, "ok")
        return plain(503, "no worker is serving")

    async def readyz(self, request: web.Request) -> web.StreamResponse:
        if self.supervisor.draining:
            return plain(503, "not ready: shutting down")
        problems = []
        for slot, answer in await self.each("/readyz"):
            if answer is None:
                problems.append(f"worker {slot}: not serving (restarting)")
            elif answer[0] != 200:
                problems.append(f"worker {slot}: {answer[1].removeprefix('not ready: ')}")
        if problems:
            return plain(503, "not ready: " + "; ".join(problems))
        return plain(200, "ready")

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        pids = dict(self.supervisor.pids())
        answers = await self.each("/metrics")
        scraped = {
            slot: (pid, parse_exposition(answer[1]))
            for slot, answer in answers
            if answer is not None and answer[0] == 200 and (pid := pids.get(slot)) is not None
        }
        total = self.sums.total(scraped)
        body = render([*total.values(), *worker_families(self.supervisor, scraped)])
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def client(self, app: web.Application) -> AsyncIterator[None]:
        self.session = ClientSession(timeout=ClientTimeout(total=WORKER_TIMEOUT))
        yield
        await self.session.close()


def make_workers_admin_app(supervisor: Supervisor) -> web.Application:
    """The admin port of a server of several workers, served by their parent."""
    admin = WorkersAdmin(supervisor)
    app = web.Application()
    app.cleanup_ctx.append(admin.client)
    app.router.add_get("/livez", admin.livez)
    app.router.add_get("/readyz", admin.readyz)
    app.router.add_get("/metrics", admin.metrics)
    return app

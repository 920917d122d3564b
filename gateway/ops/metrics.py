"""Prometheus metrics: one registry per app (never the global default, so that tests can
build several apps in one process).

Request metrics are recorded as each response completes (``gateway.ops.accesslog``). What
other parts already count is read at scrape time by ``GatewayCollector``: the engine's
counters and memory budget, store calls and errors (``InstrumentedStore``), uploads in
flight and open connections (``gateway.ops.limits``), WebDAV locks held.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.errors import GatewayError
from gateway.storage.base import GetResult, ListPage, ObjectInfo, ObjectStore, UploadPart

log = logging.getLogger("bucketdav.metrics")

METHODS = frozenset({
    "GET", "HEAD", "OPTIONS", "PROPFIND", "PROPPATCH", "PUT", "DELETE", "MKCOL", "COPY",
    "MOVE", "LOCK", "UNLOCK", "POST",
})
# seconds: from a cached PROPFIND (~1 ms) to a large upload
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

T = TypeVar("T")


def method_label(method: str) -> str:
    """Bounded label values: a client inventing methods cannot grow the series."""
    return method if method in METHODS else "other"


class StoreStats:
    """Calls and failures of one store, by operation."""

    def __init__(self, share: str) -> None:
        self.share = share
        self.calls: Tally[str] = Tally()
        self.errors: Tally[tuple[str, str]] = Tally()  # (op, error class)


class InstrumentedStore:
    """An ObjectStore that counts what passes through it; everything else is forwarded."""

    def __init__(self, store: ObjectStore, stats: StoreStats) -> None:
        self.store = store
        self.stats = stats

    def __getattr__(self, name: str) -> Any:  # store-specific extras (settings, ...)
        return getattr(self.store, name)

    async def _count(self, op: str, call: Callable[[], Any]) -> Any:
        self.stats.calls[op] += 1
        try:
            return await call()
        except GatewayError as exc:
            self.stats.errors[(op, type(exc).__name__)] += 1
            raise

    @property
    def description(self) -> str:
        return self.store.description

    async def check(self) -> None:
        await self._count("check", self.store.check)

    async def head(self, key: str) -> ObjectInfo:
        info: ObjectInfo = await self._count("head", lambda: self.store.head(key))
        return info

    async def get(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        if_match: str | None = None,
    ) -> GetResult:
        result: GetResult = await self._count(
            "get", lambda: self.store.get(key, start, end, if_match)
        )
        return result

    async def list_page(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        page: ListPage = await self._count(
            "list", lambda: self.store.list_page(prefix, delimiter, token, max_keys)
        )
        return page

    async def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        if_none_match: bool = False,
    ) -> ObjectInfo:
        info: ObjectInfo = await self._count(
            "put", lambda: self.store.put(key, data, content_type, if_none_match)
        )
        return info

    async def create_upload(self, key: str, content_type: str | None = None) -> str:
        upload_id: str = await self._count(
            "create_upload", lambda: self.store.create_upload(key, content_type)
        )
        return upload_id

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> UploadPart:
        part: UploadPart = await self._count(
            "upload_part", lambda: self.store.upload_part(key, upload_id, number, data)
        )
        return part

    async def complete_upload(
        self, key: str, upload_id: str, parts: list[UploadPart]
    ) -> ObjectInfo:
        info: ObjectInfo = await self._count(
            "complete_upload", lambda: self.store.complete_upload(key, upload_id, parts)
        )
        return info

    async def abort_upload(self, key: str, upload_id: str) -> None:
        await self._count("abort_upload", lambda: self.store.abort_upload(key, upload_id))

    async def list_uploads(self, prefix: str) -> list[tuple[str, str]]:
        uploads: list[tuple[str, str]] = await self._count(
            "list_uploads", lambda: self.store.list_uploads(prefix)
        )
        return uploads

    async def copy(self, src: str, dst: str) -> ObjectInfo:
        info: ObjectInfo = await self._count("copy", lambda: self.store.copy(src, dst))
        return info

    async def delete(self, key: str) -> None:
        await self._count("delete", lambda: self.store.delete(key))

    async def delete_many(self, keys: list[str]) -> dict[str, str]:
        failed: dict[str, str] = await self._count(
            "delete_many", lambda: self.store.delete_many(keys)
        )
        return failed

    async def close(self) -> None:
        await self.store.close()


class Metrics:
    """The registry of one app and the request metrics recorded into it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bucketdav_http_requests", "HTTP requests answered, by method and status",
            ["method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "bucketdav_http_request_duration_seconds",
            "Time from request head to the last byte of the response, by method",
            ["method"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.received = Counter(
            "bucketdav_http_received_bytes", "Request body bytes received",
            registry=self.registry,
        )
        self.sent = Counter(
            "bucketdav_http_sent_bytes", "Response bytes sent, headers included",
            registry=self.registry,
        )
        self.stores: list[StoreStats] = []
        self._request_children: dict[tuple[str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}

    def observe(
        self, method: str, status: int, seconds: float, received: int, sent: int
    ) -> None:
        label = method_label(method)
        # labels() looks the child up under a lock on every call; keep the children.
        counter = self._request_children.get((label, status))
        if counter is None:
            counter = self._request_children[(label, status)] = self.requests.labels(
                label, str(status)
            )
        histogram = self._latency_children.get(label)
        if histogram is None:
            histogram = self._latency_children[label] = self.latency.labels(label)
        counter.inc()
        histogram.observe(max(seconds, 0.0))
        self.received.inc(max(received, 0))
        self.sent.inc(max(sent, 0))

    def instrument(self, share: str, store: ObjectStore) -> InstrumentedStore:
        stats = StoreStats(share)
        self.stores.append(stats)
        return InstrumentedStore(store, stats)


# Engine counters that are levels, not running totals.
_ENGINE_GAUGES = frozenset({"inflight_requests", "inflight_peak", "budget_peak"})


def _safe(read: Callable[[], T], default: T) -> T:
    """A scrape must not fail because one source of numbers did."""
    try:
        return read()
    except Exception:  # pragma: no cover - defensive
        log.exception("reading a metric failed")
        return default


class GatewayCollector(Collector):
    """Reads numbers the gateway's parts keep, at scrape time."""

    def __init__(
        self,
        metrics: Metrics,
        engine: Any,
        limits: Any = None,
        locks_held: Callable[[], int] | None = None,
    ) -> None:
        self.metrics = metrics
        self.engine = engine
        self.limits = limits
        self.locks_held = locks_held

    def collect(self) -> Iterable[Metric]:
        yield from self._engine()
        yield from self._stores()
        if self.limits is not None:
            uploads = GaugeMetricFamily(
                "bucketdav_uploads_in_flight", "PUT requests being received")
            uploads.add_metric([], self.limits.uploads)
            yield uploads
            conns = GaugeMetricFamily(
                "bucketdav_open_connections", "Client connections open")
            conns.add_metric([], len(self.limits.connections))
            yield conns
            refused = CounterMetricFamily(
                "bucketdav_refused_connections", "Connections refused at the connection limit")
            refused.add_metric([], self.limits.refused_connections)
            yield refused
        if self.locks_held is not None:
            locks = GaugeMetricFamily("bucketdav_locks_held", "WebDAV locks currently held")
            locks.add_metric([], _safe(self.locks_held, 0))
            yield locks

    def _engine(self) -> Iterator[Metric]:
        counters = self.engine.counters
        snapshot = getattr(counters, "snapshot", None)
        values: dict[str, int] = _safe(snapshot, {}) if callable(snapshot) else {
            k: v for k, v in vars(counters).items() if isinstance(v, int)
        }
        budget = self.engine.budget
        values.pop("budget_limit", None)
        values.pop("budget_in_use", None)
        for name, value in sorted(values.items()):
            if not isinstance(value, int):
                continue
            if name in _ENGINE_GAUGES:
                gauge = GaugeMetricFamily(f"bucketdav_engine_{name}", f"engine: {name}")
                gauge.add_metric([], value)
                yield gauge
            else:
                counter = CounterMetricFamily(f"bucketdav_engine_{name}", f"engine: {name}")
                counter.add_metric([], value)
                yield counter
        for name, help_, value in (
            ("bucketdav_memory_budget_bytes", "memory budget (--memory-target)", budget.limit),
            ("bucketdav_memory_in_use_bytes", "memory budget in use", budget.in_use),
            ("bucketdav_memory_waiters", "work waiting for memory", budget.waiting),
        ):
            gauge = GaugeMetricFamily(name, help_)
            gauge.add_metric([], value)
            yield gauge

    def _stores(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "bucketdav_store_requests", "Store requests, by share and operation",
            labels=["share", "op"])
        errors = CounterMetricFamily(
            "bucketdav_store_errors", "Store requests that failed, by share, operation, error",
            labels=["share", "op", "error"])
        for stats in self.metrics.stores:
            for op, n in sorted(stats.calls.items()):
                calls.add_metric([stats.share, op], n)
            for (op, error), n in sorted(stats.errors.items()):
                errors.add_metric([stats.share, op, error], n)
        yield calls
        yield errors


def wsgidav_locks_held(service: Any) -> int:
    """Locks held in a LockService built on wsgidav's lock manager (expired ones purged)."""
    storage = service.manager.storage
    locks = storage.get_lock_list("/", include_root=True, include_children=True, token_only=True)
    return len(locks)

"""Prometheus metrics: one registry per app (never the global default, so that tests can
build several apps in one process).

Request metrics are recorded as each response completes (``gateway.ops.accesslog``). What
other parts already count is read at scrape time by ``GatewayCollector``: the engine's
counters and memory budget, store calls and errors (``InstrumentedStore``), uploads in
flight and open connections (``gateway.ops.limits``), WebDAV locks held (a callable the
app passes: the lock service's ``count``).
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.engine.context import Shared
from gateway.errors import GatewayError
from gateway.storage.base import ObjectStore

log = logging.getLogger("bucketdav.metrics")

METHODS = frozenset({
    "GET", "HEAD", "OPTIONS", "PROPFIND", "PROPPATCH", "PUT", "DELETE", "MKCOL", "COPY",
    "MOVE", "LOCK", "UNLOCK", "POST",
})
# seconds: from a cached PROPFIND (~1 ms) to a large upload
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

T = TypeVar("T")
P = ParamSpec("P")


def method_label(method: str) -> str:
    """Bounded label values: a client inventing methods cannot grow the series."""
    return method if method in METHODS else "other"


class StoreStats:
    """Calls and failures of one store, by operation."""

    def __init__(self, share: str) -> None:
        self.share = share
        self.calls: Tally[str] = Tally()
        self.errors: Tally[tuple[str, str]] = Tally()  # (op, error class)


# Each coroutine of the ObjectStore protocol is counted, under the label its metrics have
# always used; close() is not a store request.
STORE_OPERATIONS = tuple(
    name for name, member in vars(ObjectStore).items()
    if inspect.iscoroutinefunction(member) and name != "close"
)
OP_LABELS = {"list_page": "list"}


def counted(
    stats: StoreStats, op: str, call: Callable[P, Awaitable[T]]
) -> Callable[P, Awaitable[T]]:
    """``call``, counting its calls and the domain errors it raises under ``op``."""

    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        stats.calls[op] += 1
        try:
            return await call(*args, **kwargs)
        except GatewayError as exc:
            stats.errors[(op, type(exc).__name__)] += 1
            raise

    return run


class InstrumentedStore:
    """A store whose protocol operations are counted (``STORE_OPERATIONS``); it offers
    the protocol and nothing else of the store it wraps."""

    def __init__(self, store: ObjectStore, stats: StoreStats) -> None:
        self.store = store
        self.stats = stats
        for name in STORE_OPERATIONS:
            setattr(self, name, counted(stats, OP_LABELS.get(name, name), getattr(store, name)))

    @property
    def description(self) -> str:
        return self.store.description

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

    def instrument(self, share: str, store: ObjectStore) -> ObjectStore:
        stats = StoreStats(share)
        self.stores.append(stats)
        instrumented = InstrumentedStore(store, stats)
        assert isinstance(instrumented, ObjectStore)  # every protocol member is there
        return instrumented


# Engine counters that are levels, not running totals.
_ENGINE_GAUGES = frozenset({"inflight_requests", "inflight_peak", "budget_peak"})


# The disk cache tier (--cache), by counter name: (help, is a level).
_DISK_CACHE = {
    "disk_cache_hits": ("blocks served from the disk cache", False),
    "disk_cache_misses": ("blocks looked for in the disk cache and not found", False),
    "disk_cache_read_bytes": ("block bytes read from the disk cache", False),
    "disk_cache_written_bytes": ("bytes written to the disk cache", False),
    "disk_cache_evictions": ("disk cache files evicted to stay under --max-cache-size", False),
    "disk_cache_errors": ("disk cache files found corrupted or foreign (dropped and "
                          "refetched) and writes that failed", False),
    "disk_cache_dropped_writes": ("blocks not written to disk at once because the writer "
                                  "was behind", False),
    "disk_cache_late_writes": ("dropped blocks written later, once the writer had room, "
                               "from the memory cache", False),
    "disk_cache_bytes": ("bytes the disk cache holds", True),
    "disk_cache_limit": ("most bytes the disk cache may hold (--max-cache-size)", True),
}


def _disk_cache_metric(name: str, value: int) -> Metric:
    help_, level = _DISK_CACHE.get(name, (name, False))
    if level:
        return GaugeMetricFamily(f"bucketdav_{name}", help_, value=value)
    return CounterMetricFamily(f"bucketdav_{name}", help_, value=value)


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
        engine: Shared,
        limits: Any = None,  # gateway.ops.limits.Limits (which imports this module)
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
        values: dict[str, int] = _safe(self.engine.counters.snapshot, {})
        budget = self.engine.budget
        values.pop("budget_limit", None)
        values.pop("budget_in_use", None)
        hidden = values.pop("invalid_keys_hidden", None)
        if isinstance(hidden, int):  # about the store's keys, not the engine's work
            yield CounterMetricFamily(
                "bucketdav_invalid_keys_hidden",
                "Keys that are not valid paths (control characters, ...) left out of listings",
                value=hidden,
            )
        for name in sorted(k for k in values if k.startswith("disk_cache_")):
            yield _disk_cache_metric(name, values.pop(name))
        for name, value in sorted(values.items()):
            if name in _ENGINE_GAUGES:
                gauge = GaugeMetricFamily(f"bucketdav_engine_{name}", f"engine: {name}")
                gauge.add_metric([], value)
                yield gauge
            else:
                counter = CounterMetricFamily(f"bucketdav_engine_{name}", f"engine: {name}")
                counter.add_metric([], value)
                yield counter
        for name, help_, value in (
            ("bucketdav_memory_budget_bytes",
             "memory budget of buffers (--memory-target less the process reserve)",
             budget.limit),
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

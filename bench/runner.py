"""One benchmark invocation: start the rig, run every workload on every contender, alternating.

Order: for each workload, for each repetition, each contender in turn (A B C A B C ...), so
that a slow drift of the machine spreads over all contenders alike. Every measurement of a
gateway starts a fresh server process: caches are cold, and the peak memory is that
workload's own. Backend bytes are read from the proxy after the server has stopped, so that
read-ahead still in flight when the client finished is counted too.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import dataset, servers
from bench.dataset import Sizes
from bench.servers import Proxy, RssSampler, Service
from bench.workloads import NotAvailable, Target, Workload

MiB = 1024 * 1024
AT_REST_AFTER = 1.0  # seconds a started server idles before its memory "at rest" is taken


@dataclass(frozen=True, slots=True)
class Options:
    sizes: Sizes
    runs: int
    bandwidth_mb: float
    latency_ms: float
    memory_target_mib: int
    only: tuple[str, ...]  # workload keys to run; empty: all
    contenders: tuple[str, ...]
    bucketdav_args: tuple[str, ...]
    rclone_args: tuple[str, ...]
    timeout: float  # seconds one measurement may take
    keep_logs: Path | None


@dataclass
class Measurement:
    workload: str
    contender: str
    repetition: int
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the measurement failed
    unavailable: str | None = None  # the contender does not offer this yet (n/a)


@dataclass
class Results:
    options: dict[str, Any]
    versions: dict[str, str]
    measurements: list[Measurement] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # contender -> why it did not run
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        measurements = [Measurement(**m) for m in data.pop("measurements")]
        return cls(**data, measurements=measurements)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Rig:
    """The running backend (s3rver behind the shaping proxy) and how to start contenders."""

    options: Options
    workdir: Path
    s3rver: Service
    proxy: Proxy

    def target(self, name: str, server: Service | None) -> Target:
        store = f"{self.s3rver.url}/{dataset.BUCKET}/"
        if server is None:
            return Target(name, f"{self.proxy.url}/{dataset.BUCKET}/", s3=True, store=store)
        return Target(name, f"{server.url}/", s3=False, store=store)

    def start(self, name: str, memory_target_mib: int | None = None) -> Service | None:
        logs = self.workdir / "logs"
        if name == "bucketdav":
            return servers.start_bucketdav(
                self.proxy.url, dataset.BUCKET,
                memory_target_mib or self.options.memory_target_mib,
                list(self.options.bucketdav_args), logs,
            )
        if name == "rclone":
            return servers.start_rclone(
                self.proxy.url, dataset.BUCKET, list(self.options.rclone_args), logs
            )
        return None


@contextlib.contextmanager
def rig(options: Options) -> Iterator[Rig]:
    """s3rver (data written once) behind the proxy; everything is stopped and removed after."""
    workdir = Path(tempfile.mkdtemp(prefix="bucketdav-bench-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        if options.keep_logs is not None:
            stack.callback(_copy_logs, workdir / "logs", options.keep_logs)
        logs = workdir / "logs"
        s3rver = servers.start_s3rver(workdir / "s3rver", logs)
        stack.callback(s3rver.stop)
        log(f"s3rver at {s3rver.url}; writing the data set into {workdir / 's3rver'}")
        started = time.monotonic()
        asyncio.run(dataset.populate(s3rver.url, options.sizes))
        log(f"data set written in {time.monotonic() - started:.1f}s")
        proxy = servers.start_proxy(s3rver.url, options.bandwidth_mb, options.latency_ms, logs)
        stack.callback(proxy.service.stop)
        log(
            f"shaping proxy at {proxy.url}: {options.bandwidth_mb:g} MB/s per connection, "
            f"{options.latency_ms:g} ms per request"
        )
        yield Rig(options, workdir, s3rver, proxy)


def _copy_logs(source: Path, destination: Path) -> None:
    if source.exists():
        shutil.copytree(source, destination, dirs_exist_ok=True)


def available_contenders(wanted: tuple[str, ...], skipped: dict[str, str]) -> list[str]:
    chosen = []
    for name in wanted:
        if name == "rclone" and servers.rclone_binary() is None:
            skipped[name] = "rclone is not installed"
            continue
        chosen.append(name)
    return chosen


def measure(rig: Rig, workload: Workload, contender: str, repetition: int) -> Measurement:
    result = Measurement(workload.key, contender, repetition)
    server: Service | None = None
    sampler: RssSampler | None = None
    try:
        server = rig.start(contender, workload.memory_target_mib)
        if server is not None:
            sampler = RssSampler(server.proc.pid)
            if workload.at_rest:
                time.sleep(AT_REST_AFTER)
                sampler.reset()  # the peak starts again from the memory now
                result.metrics["rest_rss_mib"] = sampler.peak / MiB
        before = rig.proxy.stats()
        if sampler is not None:
            sampler.reset()
        target = rig.target(contender, server)
        sample = asyncio.run(
            asyncio.wait_for(workload.run(target, repetition), rig.options.timeout)
        )
        if sampler is not None:
            result.metrics["peak_rss_mib"] = sampler.peak / MiB
        result.metrics.update(sample.metrics)
        result.notes += sample.notes
    except NotAvailable as exc:
        result.unavailable = str(exc)
        return result
    except (TimeoutError, Exception) as exc:  # one failure must not end the run
        result.error = f"{type(exc).__name__}: {exc}"
        if server is not None:
            result.error += "\n" + server.log_tail(10)
        return result
    finally:
        if sampler is not None:
            sampler.close()
        if server is not None:
            server.stop()
    after = rig.proxy.stats()
    direction = "request_bytes" if workload.upload else "response_bytes"
    backend = after[direction] - before[direction]
    result.metrics["backend_bytes"] = backend
    result.metrics["backend_requests"] = after["requests"] - before["requests"]
    if after.get("unframed", 0) > before.get("unframed", 0):
        result.notes.append("the proxy could not follow some requests: latency not added")
    result.metrics["served_bytes"] = sample.served
    result.metrics["backend_per_served"] = backend / sample.served if sample.served else 0.0
    return result


def describe(m: Measurement) -> str:
    if m.unavailable:
        return f"n/a ({m.unavailable})"
    if m.error:
        return "FAILED: " + m.error.splitlines()[0]
    shown = ", ".join(
        f"{k}={v:.1f}" for k, v in m.metrics.items()
        if k in ("mb_s", "p50_ms", "p99_ms", "rps", "ttfb_ms", "total_ms", "peak_rss_mib",
                 "backend_per_served")
    )
    return shown + ("; " + "; ".join(m.notes) if m.notes else "")


def run_all(
    options: Options,
    workloads: list[Workload],
    results: Results,
    on_measurement: Callable[[Measurement], None] = lambda m: None,
) -> None:
    contenders = available_contenders(options.contenders, results.skipped)
    started = time.monotonic()
    with rig(options) as r:
        for workload in workloads:
            if options.only and workload.key not in options.only:
                continue
            names = [c for c in contenders if c in workload.contenders]
            repetitions = options.runs if workload.repeat else 1
            for repetition in range(repetitions):
                for name in names:
                    log(f"{workload.title} | {name} | run {repetition + 1}/{repetitions}")
                    m = measure(r, workload, name, repetition)
                    results.measurements.append(m)
                    log(f"  {describe(m)}")
                    on_measurement(m)
                    if workload.upload:
                        _remove_upload(r, name, repetition)
    results.seconds = time.monotonic() - started


def _remove_upload(r: Rig, contender: str, repetition: int) -> None:
    from bench.workloads import put_key

    key = put_key(contender, repetition)
    for name in (key, key + ".probe"):
        asyncio.run(dataset.delete(r.s3rver.url, name))

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
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import dataset, machine, reads, servers
from bench.dataset import Sizes
from bench.servers import Proxy, RssSampler, Service
from bench.workloads import NOT_BUILT, NotAvailable, Sample, Target, Workload

MiB = 1024 * 1024
GiB = 1024 * MiB
AT_REST_AFTER = 1.0  # seconds a started server idles before its memory "at rest" is taken
# After the first read of the disk-cache workload: blocks are written behind the reader, so
# give the last ones time to reach the disk before the restart.
CACHE_SETTLE = 2.0
# The direct requests through one more process that only forwards bytes (bench/proxy.py
# with no latency and no pacing, on the same cores): what any hop in the path costs here,
# the floor under what a gateway can reach against direct.
FORWARDER = "forwarder"


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
    redis: Service | None = None  # for bucketdav-2w; None: the unshared-workers escape
    has_cache: bool = False  # bucketdav offers --cache

    def target(self, name: str, server: Service | None, unshaped: bool = False) -> Target:
        store = f"{self.s3rver.url}/{dataset.BUCKET}/"
        if server is None:
            backend = self.s3rver.url if unshaped else self.proxy.url
            return Target(name, f"{backend}/{dataset.BUCKET}/", s3=True, store=store)
        if name == FORWARDER:  # S3 requests, one hop further from the store
            return Target(name, f"{server.url}/{dataset.BUCKET}/", s3=True, store=store)
        return Target(name, f"{server.url}/", s3=False, store=store)

    def start(
        self, name: str, workload: Workload, cache: Path | None = None
    ) -> Service | None:
        logs = self.workdir / "logs"
        endpoint = self.s3rver.url if workload.unshaped else self.proxy.url
        memory = workload.memory_target_mib or self.options.memory_target_mib
        extra = list(self.options.bucketdav_args)
        # One worker or two serve the local folder of a local share, else the bucket.
        bucket = str(self.workdir / "local") if workload.local_share else f"s3://{dataset.BUCKET}"
        store = None if workload.local_share else endpoint
        if name == "bucketdav":
            if cache is not None:
                # Room for the whole object twice: nothing is evicted between the two reads.
                extra += ["--cache", str(cache),
                          "--max-cache-size", str(2 * self.options.sizes.sequential)]
            return servers.start_bucketdav(bucket, store, memory, extra, logs)
        if name == "bucketdav-2w":
            env: dict[str, str] = {}
            if self.redis is not None:
                extra += ["--state", f"redis://127.0.0.1:{self.redis.port}/0"]
            else:
                # Read-only workloads share nothing a second process could get wrong.
                env["BUCKETDAV_TEST_UNSHARED_WORKERS"] = "1"
            return servers.start_bucketdav(bucket, store, memory, extra, logs, env, workers=2)
        if name == "local":
            return servers.start_bucketdav(str(self.workdir / "local"), None, memory, extra, logs)
        if name == FORWARDER:
            # The proxy's own forwarding with no latency and no pacing: a hop, nothing else.
            return servers.start_proxy(endpoint, 0, 0, logs).service
        if name == "rclone":
            return servers.start_rclone(endpoint, dataset.BUCKET, list(self.options.rclone_args),
                                        logs)
        return None


@contextlib.contextmanager
def rig(options: Options, workloads: list[Workload], contenders: list[str]) -> Iterator[Rig]:
    """s3rver (with the data the workloads read, written once) behind the proxy, and what the
    contenders need; everything is stopped and removed after."""
    workdir = Path(tempfile.mkdtemp(prefix="bucketdav-bench-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        if options.keep_logs is not None:
            stack.callback(_copy_logs, workdir / "logs", options.keep_logs)
        logs = workdir / "logs"
        log(machine.drop_page_cache())
        s3rver = servers.start_s3rver(workdir / "s3rver", logs)
        stack.callback(s3rver.stop)
        log(f"s3rver at {s3rver.url}; writing the data set into {workdir / 's3rver'}")
        started = time.monotonic()
        groups, local = data_groups(workloads, contenders)
        asyncio.run(dataset.populate(s3rver.url, options.sizes, groups))
        if local:
            dataset.write_local(workdir / "local", options.sizes, local)
        written = time.monotonic()
        # Its writeback (tens of thousands of small files) would otherwise run under the
        # first workloads, as a PUT's would under the next upload (see measure).
        os.sync()
        log(f"data set written in {written - started:.1f}s, "
            f"on disk {time.monotonic() - written:.1f}s later")
        proxy = servers.start_proxy(s3rver.url, options.bandwidth_mb, options.latency_ms, logs)
        stack.callback(proxy.service.stop)
        log(
            f"shaping proxy at {proxy.url}: {options.bandwidth_mb:g} MB/s per connection, "
            f"{options.latency_ms:g} ms per request"
        )
        r = Rig(options, workdir, s3rver, proxy)
        if "bucketdav-2w" in contenders and any("bucketdav-2w" in w.contenders
                                               for w in workloads):
            r.redis = servers.start_redis(workdir / "redis", logs)
            if r.redis is not None:
                stack.callback(r.redis.stop)
                log(f"redis-server at 127.0.0.1:{r.redis.port} for --workers 2")
            else:
                log("no redis-server: --workers 2 runs with unshared state (read-only here)")
        if any(w.disk_cache for w in workloads):
            r.has_cache = servers.bucketdav_offers("--cache")
        yield r


def data_groups(workloads: list[Workload], contenders: list[str]
                ) -> tuple[set[str], set[str]]:
    """The object groups to write into s3rver and into the local folder: a local-folder
    share's groups go to the folder only; the local contender reads the big object there."""
    bucket = {g for w in workloads if not w.local_share for g in w.needs}
    local = {g for w in workloads if w.local_share for g in w.needs}
    if "local" in contenders and any("local" in w.contenders for w in workloads):
        local.add("sequential")
    return bucket, local


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


class CpuMeter:
    """CPU seconds a server's process tree spends between ``start`` and ``stop``, and how
    they split between its processes (the workers of ``--workers``)."""

    def __init__(self, server: Service | None) -> None:
        self._pid = server.proc.pid if server is not None else None
        self._before: dict[int, float] = {}
        self.seconds = 0.0
        self.by_process: list[float] = []  # the busiest first

    def start(self) -> None:
        if self._pid is not None:
            self._before = servers.cpu_by_process(self._pid)

    def stop(self) -> None:
        if self._pid is not None:
            after = servers.cpu_by_process(self._pid)
            spent = [t - self._before.get(pid, 0.0) for pid, t in after.items()]
            self.seconds = sum(spent)
            self.by_process = sorted(spent, reverse=True)


def split_note(by_process: list[float], workers: int) -> str | None:
    """How a server's CPU seconds split between its ``workers`` busiest processes (its
    workers: the parent barely works): whether the kernel spread the connections evenly."""
    if workers < 2 or len(by_process) < workers:
        return None
    return "CPU seconds per worker: " + ", ".join(f"{t:.2f}" for t in by_process[:workers])


def cpu_metrics(seconds: float, sample: Sample) -> dict[str, float]:
    """The server's CPU seconds, per GiB served and per 1,000 client requests."""
    found = {"cpu_s": seconds}
    if sample.served:
        found["cpu_s_per_gib"] = seconds / (sample.served / GiB)
    if sample.requests:
        found["cpu_s_per_1k_req"] = seconds / (sample.requests / 1000)
    return found


def _run(rig: Rig, workload: Workload, target: Target, repetition: int) -> Sample:
    return asyncio.run(asyncio.wait_for(workload.run(target, repetition), rig.options.timeout))


def _prime(rig: Rig, workload: Workload, contender: str, cache: Path) -> None:
    """The first read of a disk-cache workload (the big object, once), on a server that is
    then stopped: the measured reads come from a new process on the same cache directory."""
    server = rig.start(contender, workload, cache)
    first = reads.sequential(rig.options.sizes)
    try:
        target = rig.target(contender, server)
        asyncio.run(asyncio.wait_for(first(target, 0), rig.options.timeout))
        time.sleep(CACHE_SETTLE)
    finally:
        if server is not None:
            server.stop()


def measure(rig: Rig, workload: Workload, contender: str, repetition: int) -> Measurement:
    result = Measurement(workload.key, contender, repetition)
    server: Service | None = None
    sampler: RssSampler | None = None
    cache: Path | None = None
    try:
        if workload.disk_cache and contender == "bucketdav":
            if not rig.has_cache:
                raise NotAvailable(f"{NOT_BUILT} bucketdav serve has no --cache option")
            cache = Path(tempfile.mkdtemp(prefix="cache-", dir=rig.workdir))
            shutil.rmtree(cache)  # bucketdav creates it, private (0700)
            _prime(rig, workload, contender, cache)
        server = rig.start(contender, workload, cache)
        if server is not None:
            sampler = RssSampler(server.proc.pid)
            if workload.at_rest:
                time.sleep(AT_REST_AFTER)
                sampler.reset()  # the peak starts again from the memory now
                result.metrics["rest_rss_mib"] = sampler.peak / MiB
        if workload.upload:
            # The previous upload's bytes (2 GiB for the limit: its parts and the object
            # s3rver makes of them) are still being written out: flushed now, they do not
            # slow whichever contender comes next (it measured about 5% slower).
            os.sync()
            if (free := machine.free_gib()) is not None:
                # s3rver needs free pages to write what it receives (bench/machine.py).
                result.notes.append(f"{free:.1f} GiB of memory free before the upload")
        before = rig.proxy.stats()
        if sampler is not None:
            sampler.reset()
        target = rig.target(contender, server, workload.unshaped)
        cpu = CpuMeter(server)
        cpu.start()
        sample = _run(rig, workload, target, repetition)
        cpu.stop()
        if sampler is not None:
            result.metrics["peak_rss_mib"] = sampler.peak / MiB
        result.metrics.update(sample.metrics)
        if server is not None:
            result.metrics.update(cpu_metrics(cpu.seconds, sample))
            workers = 2 if contender == "bucketdav-2w" else 1
            if (split := split_note(cpu.by_process, workers)) is not None:
                result.notes.append(split)
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
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
    after = rig.proxy.stats()
    direction = "request_bytes" if workload.upload else "response_bytes"
    backend = after[direction] - before[direction]
    if not workload.unshaped and not workload.local_share:  # else the proxy saw none of it
        result.metrics["backend_bytes"] = backend
        result.metrics["backend_requests"] = after["requests"] - before["requests"]
        result.metrics["backend_per_served"] = backend / sample.served if sample.served else 0.0
    if after.get("unframed", 0) > before.get("unframed", 0):
        result.notes.append("the proxy could not follow some requests: latency not added")
    result.metrics["served_bytes"] = sample.served
    return result


def describe(m: Measurement) -> str:
    if m.unavailable:
        return f"n/a ({m.unavailable})"
    if m.error:
        return "FAILED: " + m.error.splitlines()[0]
    shown = ", ".join(
        f"{k}={v:.1f}" for k, v in m.metrics.items()
        if k in ("mb_s", "p50_ms", "p99_ms", "rps", "ttfb_ms", "total_ms", "peak_rss_mib",
                 "backend_per_served", "cpu_s_per_gib", "cpu_s_per_1k_req")
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
    workloads = [w for w in workloads if not options.only or w.key in options.only]
    with rig(options, workloads, contenders) as r:
        for workload in workloads:
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

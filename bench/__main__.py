"""``python -m bench``: measure bucketdav against direct S3 reads and rclone serve webdav.

Usually started through ``bench/run``, which installs what is needed first. Writes the report
(Markdown + PNG plot) and the raw measurements (JSON, under bench/results/).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import IO

from bench import dataset, plan, report, runner, servers, targets, workloads

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("sequential", "region", "shared", "ranges", "small", "listing", "put", "workers",
             "workers-s3", "workers-seq", "workers-seq-s3", "cache", "cache-memory", "memory",
             "footprint")
# A workers' scaling figure comes with its context: the same reads on s3rver, beside direct.
WITH_CONTEXT = {"workers": "workers-s3", "workers-seq": "workers-seq-s3"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark bucketdav against the limit of the backend (8 parallel "
        "ranged GETs; for the PUT, 8 multipart parts in flight), a direct S3 connection and "
        "rclone serve webdav, on s3rver behind a proxy that adds per-request latency and a "
        "per-connection bandwidth cap.",
    )
    p.add_argument("--quick", action="store_true",
                   help="small sizes and one run: a smoke test of the whole harness")
    p.add_argument("--runs", type=int, help="repetitions of each workload (default 3; 1 quick)")
    p.add_argument("--bandwidth", type=float, default=50.0, metavar="MB/S",
                   help="proxy bandwidth cap per connection, MB/s (default 50)")
    p.add_argument("--latency", type=float, default=20.0, metavar="MS",
                   help="proxy latency added to each request, ms (default 20)")
    p.add_argument("--memory-target", type=int, default=512, metavar="MIB",
                   help="bucketdav --memory-target, and the memory workload's bound (512)")
    p.add_argument("--only", default="", metavar="LIST",
                   help="comma-separated workloads to run: " + ", ".join(WORKLOADS)
                   + " (workers and workers-seq bring their -s3 context along)")
    p.add_argument("--contenders", default=",".join(report.CONTENDERS), metavar="LIST",
                   help="comma-separated contenders (default: all of "
                   + ", ".join(report.CONTENDERS) + ")")
    p.add_argument("--bucketdav-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for bucketdav serve (repeatable)")
    p.add_argument("--rclone-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for rclone serve webdav (repeatable)")
    p.add_argument("--timeout", type=float, default=900.0, metavar="S",
                   help="longest one measurement may take (default 900 s)")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="report path (default docs/BENCHMARKS.md; with --quick "
                   "bench/results/BENCHMARKS-quick.md); the plot is written beside it")
    p.add_argument("--keep-logs", type=Path, metavar="DIR",
                   help="copy the servers' logs here before the temp directory is removed")
    p.add_argument("--from-json", type=Path, metavar="FILE",
                   help="measure nothing: write the report of earlier raw results "
                   "(bench/results/*.json)")
    return p


def _split(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = [x for x in items if x not in allowed]
    if unknown:
        raise SystemExit(f"bench: unknown {what}: {', '.join(unknown)} (use {', '.join(allowed)})")
    return items


def with_context(only: tuple[str, ...]) -> tuple[str, ...]:
    """``only`` plus the context of each workers' scaling workload named in it."""
    extra = [WITH_CONTEXT[k] for k in only if k in WITH_CONTEXT]
    return (*only, *(k for k in extra if k not in only))


def exclusive() -> IO[str]:
    """Hold a machine-wide lock while measuring: two benchmarks sharing the cores would make
    both sets of numbers wrong. A second one waits for the first. The lock goes with the
    process (also if it is killed)."""
    path = Path(tempfile.gettempdir()) / "bucketdav-bench.lock"
    handle = open(path, "a+")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        print(f"bench: another benchmark is running on this machine ({holder}); waiting",
              file=sys.stderr, flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def _terminate(signum: int, frame: FrameType | None) -> None:
    print(f"bench: got {signal.Signals(signum).name}", file=sys.stderr, flush=True)
    raise KeyboardInterrupt  # run the same cleanup as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(args_list)
    sizes = dataset.QUICK if args.quick else dataset.FULL
    runs = args.runs or (1 if args.quick else 3)
    if runs < 1:
        raise SystemExit("bench: --runs must be at least 1")
    options = runner.Options(
        sizes=sizes,
        runs=runs,
        bandwidth_mb=args.bandwidth,
        latency_ms=args.latency,
        memory_target_mib=args.memory_target,
        only=with_context(_split(args.only, WORKLOADS, "workload")),
        contenders=_split(args.contenders, report.CONTENDERS, "contender"),
        bucketdav_args=tuple(args.bucketdav_arg),
        rclone_args=tuple(args.rclone_arg),
        timeout=args.timeout,
        keep_logs=args.keep_logs,
    )
    out: Path = args.out or (
        ROOT / "bench" / "results" / "BENCHMARKS-quick.md" if args.quick
        else ROOT / "docs" / "BENCHMARKS.md"
    )
    command = " ".join(["bench/run", *(shlex.quote(a) for a in args_list)])
    all_workloads = plan.build(sizes)
    chosen = [w for w in all_workloads if not options.only or w.key in options.only]
    results = runner.Results(
        options={
            "runs": runs,
            "bandwidth_mb": args.bandwidth,
            "latency_ms": args.latency,
            "memory_target_mib": args.memory_target,
            "sizes": asdict(sizes),
            "bucketdav_args": list(options.bucketdav_args),
            "rclone_flags": [*servers.RCLONE_FLAGS, *options.rclone_args],
            "command": command,
            "quick": args.quick,
        },
        versions=servers.versions(),
    )
    if args.from_json:
        results = runner.Results.from_json(json.loads(args.from_json.read_text("utf-8")))
        sizes = dataset.Sizes(**results.options["sizes"])
        chosen = [w for w in plan.build(sizes)
                  if any(m.workload == w.key for m in results.measurements)]
        write_report(results, chosen, out, options.contenders, args.from_json)
        return 0
    # Ctrl-C, kill and a closed terminal all end in the same cleanup. SIGINT is set too: a
    # shell starting the benchmark in the background would otherwise leave it ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    raw = ROOT / "bench" / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)

    def save(_: runner.Measurement | None = None) -> None:
        # After every measurement: an interrupted run keeps what it measured.
        raw.write_text(json.dumps(results.as_json(), indent=1), "utf-8")

    try:
        lock = exclusive()
        runner.run_all(options, chosen, results, on_measurement=save)
        lock.close()
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started has been stopped", file=sys.stderr)
        if results.measurements:
            print(f"bench: what was measured is in {raw} (--from-json renders it)",
                  file=sys.stderr)
        return 130
    except (RuntimeError, OSError) as exc:  # the rig itself did not start
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    save()
    write_report(results, chosen, out, options.contenders, raw)
    return 0


def write_report(
    results: runner.Results,
    chosen: list[workloads.Workload],
    out: Path,
    wanted: tuple[str, ...],
    raw: Path,
) -> None:
    o = results.options
    command = o["command"]
    contenders = report.shown_contenders(
        [c for c in wanted if c not in results.skipped], chosen)
    verdicts = targets.targets(results, o["sizes"]["shared"], o["memory_target_mib"])
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_path = out.with_name(out.stem.lower() + ".png")
    subtitle = (f"s3rver behind {o['bandwidth_mb']:g} MB/s per connection, "
                f"{o['latency_ms']:g} ms per request; {report.machine()['cores']} cores")
    report.plot(results, chosen, contenders, plot_path, o["memory_target_mib"], subtitle,
                verdicts)
    out.write_text(
        report.markdown(results, chosen, contenders, verdicts, plot_path.name, command), "utf-8"
    )
    print()
    print(report.console(results, chosen, contenders, verdicts))
    print(f"\nreport: {out}\nplot:   {plot_path}\nraw:    {raw}")


if __name__ == "__main__":
    sys.exit(main())

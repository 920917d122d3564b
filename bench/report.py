"""Turn measurements into medians, target verdicts, a Markdown report and a plot."""

from __future__ import annotations

import os
import platform
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.medians import cell, ratio, spread_of
from bench.runner import Results
from bench.targets import CPU_BASELINE, CPU_BASELINE_SOURCE, Verdict
from bench.workloads import FOOTPRINT_TARGET_MIB, Workload

CONTENDERS = ("direct", "limit", "forwarder", "bucketdav", "bucketdav-2w", "local", "rclone")
LABELS = {
    "direct": "direct S3 (1 connection per reader)",
    "limit": "direct, 8 parallel ranges or parts (the limit)",
    "forwarder": "direct through a bare TCP forwarder (one hop more)",
    "bucketdav": "bucketdav",
    "bucketdav-2w": "bucketdav, 2 workers",
    "local": "bucketdav, local-folder share",
    "rclone": "rclone serve webdav",
}
SHORT = {"direct": "direct S3", "limit": "limit", "forwarder": "forwarder",
         "bucketdav-2w": "2 workers", "local": "local folder"}
COLORS = {"direct": "#9e9e9e", "limit": "#2ca02c", "forwarder": "#8c564b",
          "bucketdav": "#1f77b4", "bucketdav-2w": "#17becf", "local": "#9467bd",
          "rclone": "#ff7f0e"}
# The columns "bucketdav vs X": what bucketdav is measured against.
REFERENCES = ("direct", "limit", "forwarder", "rclone")
SERVERS = ("bucketdav", "bucketdav-2w", "local", "rclone")  # contenders with a CPU to measure

# metric -> (label, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "mb_s": ("MB/s", True),
    "ttfb_ms": ("first byte, ms", False),
    "p50_ms": ("p50 latency, ms", False),
    "p99_ms": ("p99 latency, ms", False),
    "rps": ("requests/s", True),
    "total_ms": ("total, ms", False),
    "peak_rss_mib": ("peak RSS, MiB", False),
    "rest_rss_mib": ("RSS at rest, MiB", False),
    "backend_per_served": ("backend bytes per served byte", False),
    "cpu_s_per_gib": ("server CPU s per GiB", False),
    "cpu_s_per_1k_req": ("server CPU s per 1,000 requests", False),
}


def shown_contenders(wanted: Iterable[str], workloads: list[Workload]) -> list[str]:
    """The contenders, in table order, that some of ``workloads`` measure."""
    return [c for c in CONTENDERS if c in wanted and any(c in w.contenders for w in workloads)]


# ---- memory figures --------------------------------------------------------------------------


def memory_figures(results: Results, memory_target_mib: int) -> list[str]:
    """bucketdav's footprint as measured in this run: what the README's "Memory and speed"
    quotes, so that the figures there are measured, never typed by hand."""
    o = results.options
    sizes = o.get("sizes", {})
    seq = _size(sizes["sequential"]) if "sequential" in sizes else "the sequential object"

    def figure(workload: str, metric: str, what: str) -> str | None:
        c = cell(results, workload, "bucketdav", metric)
        if c.total == 0:
            return None  # not measured in this run
        value = c.text(0) + (" MiB" if c.value is not None else "")
        return f"{what}: {value}"

    found = [
        figure("footprint", "rest_rss_mib", "at rest (started, idle for a second), RSS"),
        figure("footprint", "peak_rss_mib",
               f"one reader of {seq} at --memory-target {FOOTPRINT_TARGET_MIB}, peak RSS"),
        figure("sequential", "peak_rss_mib",
               f"one reader of {seq} at --memory-target {memory_target_mib}, peak RSS"),
        figure("memory", "peak_rss_mib",
               f"{sizes.get('memory_readers', 'many')} readers of {seq} at --memory-target "
               f"{memory_target_mib}, peak RSS"),
    ]
    return [f for f in found if f is not None]


# ---- the workers' scaling -----------------------------------------------------------------------


def scaling_lines(results: Results, workloads: list[Workload]) -> list[str]:
    """Two workers against one on each workers' workload, with what direct to s3rver did
    where it ran: issue 11's item 3 in one place."""
    found = []
    for w in workloads:
        if "bucketdav-2w" not in w.contenders:
            continue
        metric = w.shown[0]
        unit = METRICS[metric][0]
        one, two = (cell(results, w.key, c, metric) for c in ("bucketdav", "bucketdav-2w"))
        if one.total == 0 and two.total == 0:
            continue
        line = (f"{w.title}: 2 workers {two.text()} vs 1 worker {one.text()} {unit} = "
                f"{ratio(two, one, True)}")
        if "direct" in w.contenders:
            line += f" (direct to s3rver: {cell(results, w.key, 'direct', metric).text()})"
        found.append(line)
    return found


# ---- tables ----------------------------------------------------------------------------------


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def main_table(results: Results, workloads: list[Workload], contenders: list[str]) -> str:
    others = [c for c in contenders if c in REFERENCES]
    head = ["Workload", "Metric", *(LABELS[c] for c in contenders)]
    head += [f"bucketdav vs {c}" for c in others] if "bucketdav" in contenders else []
    lines = [_row(head), _row(["---", "---", *("---:" for _ in head[2:])])]
    for w in workloads:
        names = [c for c in contenders if c in w.contenders]
        for i, metric in enumerate(w.shown):
            label, higher = METRICS[metric]
            label += " ↑" if higher else " ↓"
            cells = {c: cell(results, w.key, c, metric) for c in contenders}
            row = [w.title if i == 0 else "", label]
            row += [cells[c].text() if c in names else "" for c in contenders]
            if "bucketdav" in contenders:
                row += [ratio(cells["bucketdav"], cells[c], higher)
                        if c in names and "bucketdav" in names else "" for c in others]
            lines.append(_row(row))
    return "\n".join(lines)


def side_table(
    results: Results, workloads: list[Workload], contenders: list[str], metric: str,
    digits: int = 2,
) -> str:
    head = ["Workload", *(LABELS[c] for c in contenders)]
    lines = [_row(head), _row(["---", *("---:" for _ in contenders)])]
    for w in workloads:
        row = [w.title]
        row += [cell(results, w.key, c, metric).text(digits) if c in w.contenders else ""
                for c in contenders]
        lines.append(_row(row))
    return "\n".join(lines)


def cpu_table(results: Results, workloads: list[Workload], contenders: list[str]) -> str:
    """Server CPU seconds (user + system, the whole process tree) per GiB served and per
    1,000 client requests."""
    servers = [c for c in contenders if c in SERVERS]
    head = ["Workload", *(LABELS[c] for c in servers)]
    lines = [_row(head), _row(["---", *("---:" for _ in servers)])]
    for w in workloads:
        row = [w.title]
        for c in servers:
            if c not in w.contenders:
                row.append("")
                continue
            per_gib = cell(results, w.key, c, "cpu_s_per_gib")
            per_k = cell(results, w.key, c, "cpu_s_per_1k_req")
            row.append(per_gib.text(2) if per_gib.value is None
                       else f"{per_gib.text(2)} s/GiB · {per_k.text(1)} s/1k req")
        lines.append(_row(row))
    return "\n".join(lines)


def baseline_lines() -> list[str]:
    if not CPU_BASELINE:
        return ["No baseline recorded yet."]
    found = [f"- a sequential read of {_size(n)}: **{v:.2f} s of server CPU per GiB**"
             for n, v in sorted(CPU_BASELINE.items(), reverse=True)]
    return [*found, f"- measured at {CPU_BASELINE_SOURCE}"]


def verdict_table(verdicts: list[Verdict]) -> str:
    lines = [_row(["Target", "Result", "Measured (medians)"]), _row(["---", "---", "---"])]
    lines += [_row([v.goal, f"**{v.status}**", v.detail]) for v in verdicts]
    return "\n".join(lines)


def notes(results: Results) -> list[str]:
    seen: list[str] = []
    for name, why in results.skipped.items():
        seen.append(f"{name}: not run: {why}")
    for m in results.measurements:
        found = []
        if m.unavailable:
            found.append(f"{m.contender}, {m.workload}: n/a: {m.unavailable}")
        if m.error:
            found.append(f"{m.contender}, {m.workload}: failed: {m.error.splitlines()[0]}")
        found += [f"{m.contender}, {m.workload}: {n}" for n in m.notes]
        seen += [f for f in found if f not in seen]
    return seen


# ---- the machine -----------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
        ram_text = f"{ram:.1f} GiB"
    except (ValueError, OSError):
        ram_text = "unknown"
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "ram": ram_text,
        "os": f"{platform.system()} {platform.release()}",
    }


# ---- the plot --------------------------------------------------------------------------------


def plot(
    results: Results,
    workloads: list[Workload],
    contenders: list[str],
    path: Path,
    memory_target_mib: int,
    subtitle: str,
    verdicts: list[Verdict],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 4
    rows = (len(workloads) + columns) // columns  # one panel more: the targets
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.6 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, w in zip(flat, workloads, strict=False):
        metric = w.shown[0]
        label, higher = METRICS[metric]
        names = [c for c in contenders if c in w.contenders]
        values = [cell(results, w.key, c, metric) for c in names]
        heights = [c.value or 0.0 for c in values]
        spread = [spread_of(results, w.key, n, metric) for n in names]
        low = [h - lo for h, (lo, _) in zip(heights, spread, strict=True)]
        high = [hi - h for h, (_, hi) in zip(heights, spread, strict=True)]
        bars = ax.bar(range(len(names)), heights, color=[COLORS[n] for n in names],
                      yerr=[low, high], ecolor="#444444", capsize=3, error_kw={"linewidth": 0.8})
        top = max((hi for _, hi in spread), default=0.0) or 1.0
        for name, bar, c, (_, hi) in zip(names, bars, values, spread, strict=True):
            text = c.text()
            if name == "bucketdav":
                text += "".join(
                    f"\n{ratio(c, cell(results, w.key, o, metric), higher)} {SHORT.get(o, o)}"
                    for o in names if o != "bucketdav"
                    and cell(results, w.key, o, metric).value is not None and c.value
                )
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, max(hi, bar.get_height())),
                        ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")
        if metric == "peak_rss_mib":
            ax.axhline(memory_target_mib, color="#d62728", linestyle="--", linewidth=1)
            ax.annotate(f"--memory-target {memory_target_mib} MiB", (0, memory_target_mib),
                        xytext=(0, 3), textcoords="offset points", fontsize=8, color="#d62728")
            top = max(top, memory_target_mib)
        ax.set_ylim(0, top * 1.4)
        ax.set_xticks(range(len(names)), [SHORT.get(n, n) for n in names])
        ax.set_title("\n".join(textwrap.wrap(w.title, 44)), fontsize=10)
        ax.set_ylabel(label + (" (higher is better)" if higher else " (lower is better)"),
                      fontsize=8)
        ax.tick_params(labelsize=8)
        ax.tick_params(axis="x", labelsize=8 if len(names) < 4 else 7)  # four names fit
        ax.spines[["top", "right"]].set_visible(False)
    for ax in flat[len(workloads):]:
        ax.axis("off")
    if len(flat) > len(workloads):
        lines = ["Targets"] + [f"{v.status:>7}  {v.goal}" for v in verdicts]
        lines += ["", "Bars: median; whiskers: min and max of the runs.",
                  "bucketdav bars: × = times better than", "that contender (same metric)"]
        width = 52 * (len(flat) - len(workloads))  # the free panels of the last row
        flat[len(workloads)].text(0, 1, "\n".join(_wrap(line, width) for line in lines),
                                  va="top", ha="left", fontsize=7.5, family="monospace",
                                  transform=flat[len(workloads)].transAxes)
    fig.suptitle("bucketdav vs the limit (8 parallel ranges or parts), direct S3 and rclone serve "
                 "webdav — medians\n" + subtitle,
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _wrap(line: str, width: int = 52) -> str:
    return "\n".join(textwrap.wrap(line, width, subsequent_indent=" " * 9)) or line


# ---- the document ----------------------------------------------------------------------------


def markdown(
    results: Results,
    workloads: list[Workload],
    contenders: list[str],
    verdicts: list[Verdict],
    plot_name: str,
    command: str,
) -> str:
    o: dict[str, Any] = results.options
    mach = machine()
    ver = results.versions
    rclone_flags = " ".join(o["rclone_flags"])
    lines = [
        "# Benchmarks",
        "",
        "bucketdav against the limit of the backend — the best a client can do on it: eight "
        "ranged GETs at once straight to the store — and against what a user could do "
        "instead: read the bucket directly (one S3 GET on one connection) or serve it with "
        "`rclone serve webdav`. Same backend, same run, contenders alternating. The backend is [s3rver](https://github.com/jamhall/s3rver)"
        " on loopback behind a shaping proxy (`bench/proxy.py`) that makes it behave like a "
        "store across a network: "
        f"**{o['bandwidth_mb']:g} MB/s per connection** and **{o['latency_ms']:g} ms per "
        "request**. The proxy counts the bytes it forwards, so *backend bytes per served byte* "
        "is measured, not estimated.",
        "",
        f"Generated by `{command}` in {results.seconds / 60:.1f} minutes; each number is the "
        f"median of {o['runs']} run{'s' if o['runs'] != 1 else ''} (the memory workload runs "
        "once). "
        "MB/s means 10^6 bytes per second.",
        "",
        f"![benchmark results]({plot_name})",
        "",
        "## Targets",
        "",
        verdict_table(verdicts),
        "",
        *_section("Workers: 2 against 1 on 2 cores", [
            "The gateway with `--workers 2` against one process. On a local-folder share "
            "nothing else runs on the cores (the disk is the page cache): that is the scaling "
            "of the gateway's own work, and the target. On s3rver (unshaped), s3rver is one "
            "Node process on the same cores: direct shows its ceiling, and the workers share "
            "what it leaves of the cores; for context.", "",
            *(f"- {line}" for line in scaling_lines(results, workloads))]
            if scaling_lines(results, workloads) else []),
        "## Medians",
        "",
        "↑ higher is better, ↓ lower is better. *bucketdav vs X* is how many times better "
        "bucketdav is than X (above 1× it is better): the ratio of throughputs, or the inverse "
        "ratio of latencies.",
        "",
        main_table(results, workloads, contenders),
        "",
        "## Backend bytes per served byte",
        "",
        "Bytes the backend sent through the proxy (including HTTP headers and, for listings, "
        "the S3 XML) divided by the bytes the client received; for the PUT, bytes sent *to* the "
        "backend per byte uploaded. Below 1 means a cache served some bytes; 8 readers that "
        "each fetch the object cost 8× the object, that is 1.0 per served byte.",
        "",
        side_table(results, workloads, contenders, "backend_per_served"),
        "",
        "## Backend requests",
        "",
        "HTTP requests that reached the backend through the proxy during the workload.",
        "",
        side_table(results, workloads, contenders, "backend_requests", digits=0),
        "",
        "## Peak memory of each server (RSS, MiB)",
        "",
        "Resident memory of the server's whole process tree, sampled every 50 ms during the "
        "workload; each measurement starts a fresh server process.",
        "",
        side_table(results, workloads, [c for c in contenders if c in SERVERS],
                   "peak_rss_mib", digits=0),
        "",
        "## Server CPU",
        "",
        "CPU seconds (user + system) of the server's whole process tree (workers included), "
        "read before and after the workload, per GiB the clients received and per 1,000 "
        "client requests. The load generator, the proxy and s3rver share the same cores, so "
        "these are the server's own seconds, not the machine's.",
        "",
        cpu_table(results, workloads, contenders),
        "",
        "Baseline for the CPU target (bucketdav before issue 11's lean hot path):",
        "",
        *baseline_lines(),
        "",
    ]
    figures = memory_figures(results, o["memory_target_mib"])
    if figures:
        lines += ["## bucketdav's memory (quoted in the README)", "",
                  *(f"- {f}" for f in figures), ""]
    found = notes(results)
    if found:
        lines += ["## Notes", "", *(f"- {n}" for n in found), ""]
    lines += [
        "## Machine and settings",
        "",
        f"- Machine: {mach['cores']} cores ({mach['cpu']}), {mach['ram']} RAM, {mach['os']}",
        f"- Python {ver['python']}, bucketdav {ver['bucketdav']}, {ver['rclone']}, "
        f"s3rver {ver['s3rver']} on Node {ver['node']}",
        f"- Shaping proxy: {o['bandwidth_mb']:g} MB/s per connection in each direction, "
        f"{o['latency_ms']:g} ms added before each request head; the proxy, s3rver, the "
        "server under test and the load generator (aiohttp; wrk for the workers' GETs) share "
        "these cores.",
        f"- bucketdav: `python -m gateway serve s3://bench --endpoint-url <proxy> "
        f"--force-path-style --memory-target {o['memory_target_mib']}"
        + (" " + " ".join(o["bucketdav_args"]) if o["bucketdav_args"] else "") + "`",
        f"- rclone: `rclone serve webdav BENCHS3:bench {rclone_flags}` (an S3 remote of provider "
        "Other configured through `RCLONE_CONFIG_BENCHS3_*`). `--vfs-cache-mode off` is "
        "rclone's default: reads stream from S3 with its default read-ahead buffer, nothing "
        "is cached on disk.",
        "- direct: aiohttp GETs of `http://<proxy>/bench/<key>` (s3rver serves anonymous "
        "requests), one connection per reader; the listing is ListObjectsV2 pages in turn.",
        "- the limit (direct, 8 parallel ranges): the object, or the region, cut into 8 "
        "contiguous pieces read at once as ranged GETs through the same proxy, one connection "
        "each; every piece is checked at its offset and the pieces tile the span exactly. For "
        "the PUT, a multipart upload through the proxy: 8 MiB parts, 8 in flight on their own "
        "connections, timed to CompleteMultipartUpload's 200 (whose time the notes give).",
        "- direct through a bare TCP forwarder (4 KiB GETs only): the direct requests through "
        "one more process on the same cores that only forwards bytes (`bench/proxy.py` with "
        "no latency and no pacing, in front of the shaping proxy, where bucketdav sits): what "
        "any hop in the path costs here, the floor under what a gateway reaches against "
        "direct.",
        "- bucketdav, 2 workers: `--workers 2 --state redis://...` (a redis-server the run "
        "starts) against the same bucketdav with one worker, both serving a local folder of "
        "the same files (`bucketdav serve <folder>`), and both reading s3rver directly "
        "(unshaped) beside direct to s3rver. The 4 KiB GETs are driven by `wrk` (C) with a "
        "Lua script that asks for each key once and checks every body; the sequential "
        "readers by aiohttp.",
        "- Disk cache: bucketdav with a fresh `--cache DIR` reads the object once, is "
        "restarted on the same directory, and the second read is measured (its backend bytes "
        "only) against `bucketdav serve <folder>` of the same file; n/a when bucketdav has no "
        "`--cache`.",
        f"- Sizes: {_sizes(o['sizes'])}",
        "",
        "## Method",
        "",
        "- Order: for each workload, for each run, every contender in turn (A B C A B C ...).",
        "- The data set is flushed to disk (sync) once written, so its writeback does not run "
        "under the first measurements; so are the page cache's dirty pages before each PUT, so "
        "no contender's upload is slowed by the previous one's bytes still being written.",
        "- Every measurement of a gateway starts a fresh server process (cold caches) and stops "
        "it afterwards; backend bytes are read from the proxy after the stop, so read-ahead "
        "still in flight is counted.",
        "- Every byte a client receives is checked: lengths always, content against the known "
        "pattern for every read workload (memory included); every PUT is read back from the "
        "backend and compared.",
        "- A target is met only if every run it compares succeeded and the medians meet it: "
        "any failed run is NOT met, with the failure shown.",
        "- If a WebDAV server does not answer PROPFIND yet (405), its JSON listing "
        "(`GET folder/?format=json`) is measured instead and the notes say so; a PUT that "
        "answers 405 is reported n/a.",
        "- Reproduce: `bench/run` (full) or `bench/run --quick` (a smoke run of small sizes); "
        "see [bench/README.md](../bench/README.md).",
        "",
    ]
    return "\n".join(lines)


def _section(title: str, body: list[str]) -> list[str]:
    return [f"## {title}", "", *body, ""] if body else []


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


def _sizes(s: dict[str, int]) -> str:
    b = _size
    return (
        f"sequential {b(s['sequential'])}; {s['shared_readers']} readers of {b(s['shared'])}; "
        f"{s['ranges']:,} ranges of {b(s['range_length'])}; {s['small_count']:,} GETs of "
        f"{b(s['small_size'])} at concurrency {s['small_concurrency']}; a folder of "
        f"{s['listing']:,} objects; PUT of {b(s['put'])}; {s['memory_readers']} readers of "
        f"{b(s['sequential'])} for memory; regions of {b(s.get('region', 0))} from the "
        f"middle; {s.get('workers_readers', 4)} readers for the workers, whose GETs run "
        f"{s.get('workers_seconds', 0):g} s over {s.get('workers_files', 0):,} files or "
        f"{s.get('workers_keys', 0):,} objects"
    )


def console(results: Results, workloads: list[Workload], contenders: list[str],
            verdicts: list[Verdict]) -> str:
    parts = [main_table(results, workloads, contenders), "",
             "Backend bytes per served byte:", side_table(results, workloads, contenders,
                                                         "backend_per_served"), "",
             "Server CPU:", cpu_table(results, workloads, contenders), "",
             "Targets:"]
    parts += [f"  [{v.status:>7}] {v.goal}: {v.detail}" for v in verdicts]
    scaling = scaling_lines(results, workloads)
    if scaling:
        parts += ["", "Workers:", *(f"  - {line}" for line in scaling)]
    figures = memory_figures(results, results.options["memory_target_mib"])
    if figures:
        parts += ["", "bucketdav's memory:", *(f"  - {f}" for f in figures)]
    found = notes(results)
    if found:
        parts += ["", "Notes:", *(f"  - {n}" for n in found)]
    return "\n".join(parts)

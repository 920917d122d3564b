"""4 KiB GETs of distinct keys driven by ``wrk`` (C, epoll), for the workers' scaling.

On 2 cores the load generator shares the cores with the server it measures: an aiohttp client
in Python spends about a third of the gateway's CPU per request (0.16 ms against about 0.5 ms
here), which it takes from what two workers could show; ``wrk`` spends 0.03 ms. Its Lua
script hands out the keys ``fmt % i`` for i = 0, 1, 2, ... (each key once until all were
asked for) and checks every answer: status 200 and the body byte for byte. It runs for a
fixed time; the requests/s, the p50 and any failure come back as one JSON line from its
``done`` hook.

Without wrk (not installed, and ``bench/run`` could not install it) the same keys are read
by the aiohttp load generator, and the measurement carries a note saying so.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from bench import dataset
from bench.workloads import Runner, Sample, Target, get_whole, percentile, session

MARK = "BENCH-WRK "  # the line of wrk's output that carries the result

# Globals per wrk thread (each has its own Lua state); ``done`` runs in the main state and
# adds up the threads' counters through the handles ``setup`` kept.
SCRIPT = r"""
local threads, started = {}, 0
function setup(thread)
  thread:set("id", started)
  started = started + 1
  table.insert(threads, thread)
end
function init(args)
  fmt, count, step = args[1], tonumber(args[2]), tonumber(args[3])
  local f = assert(io.open(args[4], "rb"))
  expected = f:read("*a")
  f:close()
  next_key, issued, bad, first_bad = id, 0, 0, ""
end
function request()
  local key = next_key % count
  next_key = next_key + step
  issued = issued + 1
  return wrk.format("GET", string.format(fmt, key))
end
function response(status, headers, body)
  if status ~= 200 or body ~= expected then
    bad = bad + 1
    if first_bad == "" then first_bad = "status " .. status .. ", " .. #body .. " bytes" end
  end
end
function done(summary, latency, requests)
  local issued, bad, first_bad = 0, 0, ""
  for _, t in ipairs(threads) do
    issued = issued + t:get("issued")
    bad = bad + t:get("bad")
    if first_bad == "" then first_bad = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "issued": %d, "bad": %d, "first_bad": "%s", ' ..
    '"p50_us": %d, "p99_us": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}\n',
    "MARK", summary.requests, summary.duration, issued, bad, first_bad,
    latency:percentile(50), latency:percentile(99), e.connect, e.read, e.write, e.timeout))
end
""".replace('"MARK"', json.dumps(MARK))

THREADS = 1  # one wrk thread drives 16 connections at several thousand requests/s
FALLBACK = "wrk not installed: the aiohttp load generator (Python) drove it"


def binary() -> str | None:
    return shutil.which("wrk")


def parse(output: str) -> dict[str, float | str]:
    """The result line of wrk's output (RuntimeError if there is none)."""
    for line in output.splitlines():
        if line.startswith(MARK):
            found: dict[str, float | str] = json.loads(line[len(MARK):])
            return found
    raise RuntimeError("wrk printed no result:\n" + output[-2000:])


def sample(result: dict[str, float | str], keys: int, size: int) -> Sample:
    """Requests/s and p50 of a wrk run; RuntimeError if any answer was wrong or lost."""
    errors = {k: int(result[k]) for k in ("connect", "read", "write", "timeout") if result[k]}
    if result["bad"] or errors:
        raise RuntimeError(f"{result['bad']} wrong answers ({result['first_bad'] or 'none'}), "
                           f"socket errors {errors or 'none'}")
    requests = int(result["requests"])
    seconds = float(result["duration_us"]) / 1e6
    notes = []
    if int(result["issued"]) > keys:  # a key asked for twice may be answered from a cache
        notes.append(f"{int(result['issued']):,} requests over {keys:,} keys: keys repeated")
    return Sample(
        {"rps": requests / seconds, "p50_ms": float(result["p50_us"]) / 1e3,
         "seconds": seconds},
        size * requests, notes, requests=requests,
    )


def inputs(directory: Path, size: int) -> tuple[Path, Path]:
    """The Lua script, and the body every answer must be, written into ``directory``."""
    script, expected = directory / "keys.lua", directory / "expected"
    script.write_text(SCRIPT, "utf-8")
    expected.write_bytes(dataset.content(0, size))
    return script, expected


async def run_wrk(wrk: str, target: Target, fmt: str, keys: int, size: int,
                  concurrency: int, seconds: float) -> Sample:
    """GETs of ``fmt % i`` for ``seconds`` (whole ones: all wrk takes)."""
    url = urlsplit(target.base)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script, expected = inputs(Path(tmp), size)
        argv = [wrk, f"-t{THREADS}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
                "--timeout", "30s", "-s", str(script), f"{url.scheme}://{url.netloc}/", "--",
                url.path + fmt, str(keys), str(THREADS), str(expected)]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with status {proc.returncode}:\n{out.decode()[-2000:]}")
    return sample(parse(out.decode("utf-8", "replace")), keys, size)


async def run_aiohttp(target: Target, fmt: str, keys: int, size: int,
                      concurrency: int) -> Sample:
    """The fallback: every key once, ``concurrency`` in flight."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(http: aiohttp.ClientSession, key: str) -> None:
        async with gate:
            seconds, _ = await get_whole(http, target.url(key), size, True)
            latencies.append(seconds)

    async with session(concurrency) as http:
        started = time.perf_counter()
        await asyncio.gather(*(one(http, fmt % i) for i in range(keys)))
        seconds = time.perf_counter() - started
    return Sample({"rps": keys / seconds, "p50_ms": percentile(latencies, 50) * 1e3,
                   "seconds": seconds}, size * keys, [FALLBACK], requests=keys)


def gets(sizes: dataset.Sizes, keys: int) -> Runner:
    """GETs of the objects ``dataset.many_key(i)`` for i < ``keys``, in order, for
    ``sizes.workers_seconds`` with ``sizes.small_concurrency`` in flight."""

    async def run(target: Target, _: int) -> Sample:
        found = binary()
        if found is None:
            return await run_aiohttp(target, dataset.MANY_FORMAT, min(keys, sizes.small_count),
                                     sizes.small_size, sizes.small_concurrency)
        return await run_wrk(found, target, dataset.MANY_FORMAT, keys, sizes.small_size,
                             sizes.small_concurrency, sizes.workers_seconds)

    return run

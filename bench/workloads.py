"""The load generator: each workload drives one contender with aiohttp and measures it.

A workload returns the numbers it can see from the client side: bytes served (and checked:
lengths always, content where it is cheap to know), time, per-request latencies. The runner adds
what only the rig sees (backend bytes through the proxy, the server's peak memory).

Contenders are addressed alike: the direct contender is the bucket through the proxy
(``http://proxy/bench/<key>``, S3 GETs), the others are WebDAV servers whose root is the bucket
(``http://server/<key>``).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp

from bench import dataset
from bench.dataset import Sizes


class NotAvailable(Exception):
    """The contender does not offer what the workload needs (e.g. PUT answers 405)."""


# How an n/a for a feature bucketdav does not have yet (an option missing) begins: such a
# target is n/a, never met, and not "NOT met" either.
NOT_BUILT = "not available:"


@dataclass(frozen=True, slots=True)
class Target:
    name: str  # a contender: "direct", "limit", "bucketdav", "rclone", ...
    base: str  # URL the object keys are appended to; ends with "/"
    s3: bool  # True: an S3 endpoint (the direct contender); False: a WebDAV server
    store: str = ""  # the bucket on the backend itself, unshaped: to check what was written

    def url(self, key: str) -> str:
        return self.base + quote(key)

    def stored(self, key: str) -> str:
        return (self.store or self.base) + quote(key)


@dataclass
class Sample:
    metrics: dict[str, float]
    served: int  # body bytes that crossed the client <-> contender link (either direction)
    notes: list[str] = field(default_factory=list)
    requests: int = 1  # HTTP requests the client made (the server's CPU per 1,000 requests)


Runner = Callable[[Target, int], Awaitable[Sample]]


@dataclass(frozen=True, slots=True)
class Workload:
    key: str
    title: str
    shown: tuple[str, ...]  # metric keys shown in the table; the first one is plotted
    run: Runner
    contenders: tuple[str, ...] = ("direct", "bucketdav", "rclone")
    repeat: bool = True  # False: measured once, not --runs times
    upload: bool = False  # backend bytes are request bytes, not response bytes
    memory_target_mib: int | None = None  # bucketdav's --memory-target here (None: the run's)
    at_rest: bool = False  # also sample the server's memory idle, before the first request
    needs: tuple[str, ...] = ("sequential",)  # object groups of the data set it reads
    unshaped: bool = False  # contenders read s3rver itself, not through the shaping proxy
    # bucketdav runs with a fresh --cache directory, reads once, is restarted on the same
    # directory, and the second read is measured (backend bytes: the second read's only).
    disk_cache: bool = False
    # bucketdav (one worker or two) serves a local folder holding the ``needs`` groups,
    # not the bucket: a backend the gateway does not wait on, so its own work is measured.
    local_share: bool = False


def session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _check(resp: aiohttp.ClientResponse, expected: int, what: str) -> None:
    if resp.status in (405, 501):
        raise NotAvailable(f"{what} answered {resp.status}")
    if resp.status != expected:
        raise RuntimeError(f"{what} answered {resp.status}, expected {expected}")


async def read_body(
    resp: aiohttp.ClientResponse, offset: int | None, started: float
) -> tuple[int, float]:
    """Read a body to the end; return its length and the time to its first byte.
    With an ``offset``, every byte is compared with the object content at that offset."""
    total = 0
    first = 0.0
    async for chunk in resp.content.iter_any():
        if not first:
            first = time.perf_counter() - started
        if offset is not None and chunk != dataset.content(offset + total, len(chunk)):
            raise RuntimeError(f"wrong bytes at offset {offset + total} of {resp.url}")
        total += len(chunk)
    return total, first


async def get_whole(
    http: aiohttp.ClientSession, url: str, size: int, verify: bool
) -> tuple[float, float]:
    """GET a whole object; returns (seconds, seconds to first byte)."""
    started = time.perf_counter()
    async with http.get(url) as resp:
        _check(resp, 200, f"GET {url}")
        got, ttfb = await read_body(resp, 0 if verify else None, started)
    if got != size:
        raise RuntimeError(f"GET {url} returned {got} bytes, expected {size}")
    return time.perf_counter() - started, ttfb


# ---- the workloads ---------------------------------------------------------------------------


def shared_readers(key: str, size: int, readers: int, verify: bool) -> Runner:
    """``readers`` clients GET the same whole object at once (one connection each)."""

    async def run(target: Target, _: int) -> Sample:
        async with session(readers) as http:
            started = time.perf_counter()
            await asyncio.gather(
                *(get_whole(http, target.url(key), size, verify) for _ in range(readers))
            )
            seconds = time.perf_counter() - started
        served = size * readers
        return Sample({"mb_s": served / seconds / 1e6, "seconds": seconds}, served,
                      requests=readers)

    return run


def random_ranges(sizes: Sizes) -> Runner:
    """One client, one request at a time: latency of 64 KiB ranges at random offsets."""

    async def run(target: Target, repetition: int) -> Sample:
        rng = random.Random(1000 + repetition)  # same offsets for every contender of a run
        length = sizes.range_length
        offsets = [rng.randrange(0, sizes.sequential - length) for _ in range(sizes.ranges)]
        url = target.url(dataset.SEQUENTIAL_KEY)
        latencies: list[float] = []
        async with session(1) as http:
            for offset in offsets:
                headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
                started = time.perf_counter()
                async with http.get(url, headers=headers) as resp:
                    _check(resp, 206, f"ranged GET {url}")
                    got, _ = await read_body(resp, offset, started)
                latencies.append(time.perf_counter() - started)
                if got != length:
                    raise RuntimeError(f"range at {offset} returned {got} bytes, not {length}")
        return Sample(
            {
                "p50_ms": percentile(latencies, 50) * 1e3,
                "p99_ms": percentile(latencies, 99) * 1e3,
                "seconds": sum(latencies),
            },
            length * len(offsets),
            requests=len(offsets),
        )

    return run


def small_gets(sizes: Sizes) -> Runner:
    """Whole GETs of distinct small objects, ``small_concurrency`` in flight."""

    async def run(target: Target, _: int) -> Sample:
        latencies: list[float] = []
        gate = asyncio.Semaphore(sizes.small_concurrency)

        async def one(http: aiohttp.ClientSession, key: str) -> None:
            async with gate:
                seconds, _ = await get_whole(http, target.url(key), sizes.small_size, True)
                latencies.append(seconds)

        async with session(sizes.small_concurrency) as http:
            started = time.perf_counter()
            keys = [dataset.small_key(i) for i in range(sizes.small_count)]
            await asyncio.gather(*(one(http, k) for k in keys))
            seconds = time.perf_counter() - started
        return Sample(
            {
                "rps": len(keys) / seconds,
                "p50_ms": percentile(latencies, 50) * 1e3,
                "seconds": seconds,
            },
            sizes.small_size * len(keys),
            requests=len(keys),
        )

    return run


PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
    b"<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/>"
    b"<D:displayname/></D:prop></D:propfind>"
)
_DAV_RESPONSE = re.compile(rb"<(?:[A-Za-z][\w.-]*:)?response[\s>]")
_S3_KEY = re.compile(rb"<Key>")
_S3_TOKEN = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")


async def _timed(
    http: aiohttp.ClientSession, method: str, url: str, expected: int, **kw: object
) -> tuple[bytes, float, float]:
    """One request; returns (body, seconds to first body byte, seconds to the end)."""
    started = time.perf_counter()
    async with http.request(method, url, **kw) as resp:  # type: ignore[arg-type]
        _check(resp, expected, f"{method} {url}")
        chunks: list[bytes] = []
        first = 0.0
        async for chunk in resp.content.iter_any():
            first = first or time.perf_counter() - started
            chunks.append(chunk)
    return b"".join(chunks), first, time.perf_counter() - started


def listing(sizes: Sizes) -> Runner:
    """One folder of ``sizes.listing`` objects: PROPFIND Depth 1 (or the S3 listing pages)."""

    async def run(target: Target, _: int) -> Sample:
        notes: list[str] = []
        async with session(1) as http:
            if target.s3:
                entries, served, ttfb, total, pages = await _list_s3(http, target)
            else:
                entries, served, ttfb, total, note = await _list_dav(http, target)
                notes += [note] if note else []
                pages = 1
        if entries < sizes.listing:
            raise RuntimeError(f"listing showed {entries} entries, expected {sizes.listing}")
        return Sample(
            {"ttfb_ms": ttfb * 1e3, "total_ms": total * 1e3, "entries": entries}, served, notes,
            requests=pages,
        )

    return run


async def _list_s3(
    http: aiohttp.ClientSession, target: Target
) -> tuple[int, int, float, float, int]:
    """ListObjectsV2 pages one after the other, as any S3 client lists a folder."""
    bucket_url = target.base.rstrip("/")
    token: str | None = None
    entries = served = pages = 0
    ttfb = 0.0
    started = time.perf_counter()
    while True:
        query = {"list-type": "2", "prefix": dataset.LISTING_PREFIX, "delimiter": "/"}
        if token:
            query["continuation-token"] = token
        body, first, _ = await _timed(http, "GET", bucket_url, 200, params=query)
        pages += 1
        ttfb = ttfb or first
        served += len(body)
        entries += len(_S3_KEY.findall(body))
        found = _S3_TOKEN.search(body)
        if found is None:
            return entries, served, ttfb, time.perf_counter() - started, pages
        token = found.group(1).decode()


async def _list_dav(
    http: aiohttp.ClientSession, target: Target
) -> tuple[int, int, float, float, str]:
    """PROPFIND Depth 1; a server that does not answer PROPFIND yet is measured on its JSON
    listing instead, and the note says so."""
    url = target.url(dataset.LISTING_PREFIX)
    headers = {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"}
    try:
        body, ttfb, total = await _timed(
            http, "PROPFIND", url, 207, data=PROPFIND_BODY, headers=headers
        )
        # Every entry is one <response>, plus one for the folder itself.
        return len(_DAV_RESPONSE.findall(body)) - 1, len(body), ttfb, total, ""
    except NotAvailable as exc:
        note = f"{exc}; measured GET ?format=json (the JSON listing) instead"
    body, ttfb, total = await _timed(http, "GET", url + "?format=json", 200)
    return _count_json(body), len(body), ttfb, total, note


def _count_json(body: bytes) -> int:
    """Entries in a JSON listing: a list, or the longest list inside an object."""
    data = json.loads(body)
    if isinstance(data, list):
        return len(data)
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        return max((len(v) for v in lists), default=0)
    return 0


def put(sizes: Sizes) -> Runner:
    """One streamed PUT of a new object with a Content-Length."""

    async def run(target: Target, repetition: int) -> Sample:
        key = put_key(target.name, repetition)
        headers = {"Content-Length": str(sizes.put), "Content-Type": "application/octet-stream"}
        expected = 200 if target.s3 else 201
        async with session(1) as http:
            started = time.perf_counter()
            body = dataset.stream(sizes.put)
            try:
                async with http.put(target.url(key), data=body, headers=headers) as resp:
                    await resp.read()
                    _check(resp, expected, f"PUT {target.url(key)}")
            except aiohttp.ClientError:
                # A server that refuses PUT may answer and close before reading the body;
                # the client then sees a broken pipe. A tiny PUT tells which it was.
                await _probe_put(http, target.url(key + ".probe"), expected)
                raise
            seconds = time.perf_counter() - started
            # A 201 is a claim: the bytes the store now holds are the proof (read from the
            # backend itself, so no cache of the contender can answer).
            await get_whole(http, target.stored(key), sizes.put, True)
        return Sample({"mb_s": sizes.put / seconds / 1e6, "seconds": seconds}, sizes.put)

    return run


async def _probe_put(http: aiohttp.ClientSession, url: str, expected: int) -> None:
    async with http.put(url, data=b"probe") as resp:
        await resp.read()
        _check(resp, expected, f"PUT {url}")


def put_key(contender: str, repetition: int) -> str:
    return f"put-{contender}-{repetition}.bin"


FOOTPRINT_TARGET_MIB = 48  # the small budget the README quotes a streaming peak for

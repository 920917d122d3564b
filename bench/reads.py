"""Sequential reads, and the best a client can do on the shaped backend: the limit.

The ``limit`` contender reads an object (or a region of one) as ``LIMIT_STREAMS`` ranged GETs
made at once straight to the store through the same shaping proxy, each on its own
connection: the object is cut into that many contiguous pieces that tile it exactly, every
piece is checked byte for byte at its own offset (which is what reassembling it and checking
the whole would prove, without holding a GiB in memory). With a per-connection bandwidth cap,
equal pieces on parallel connections are the fastest way to move one object: a gateway that
reads ahead with parallel ranged GETs can at best match it.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bench import dataset
from bench.dataset import Sizes
from bench.workloads import Runner, Sample, Target, _check, get_whole, read_body, session

LIMIT_STREAMS = 8


async def range_read(
    http: aiohttp.ClientSession, url: str, offset: int, length: int, started: float
) -> float:
    """One ranged GET of ``[offset, offset + length)``, checked; returns its first-byte time
    (seconds after ``started``)."""
    headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
    async with http.get(url, headers=headers) as resp:
        _check(resp, 206, f"ranged GET {url}")
        got, ttfb = await read_body(resp, offset, started)
    if got != length:
        raise RuntimeError(f"range at {offset} of {url} returned {got} bytes, not {length}")
    return ttfb


def pieces(offset: int, length: int, streams: int) -> list[tuple[int, int]]:
    """``streams`` contiguous (offset, length) pieces that tile ``[offset, offset + length)``
    exactly; the first ones one byte longer when it does not divide evenly."""
    base, extra = divmod(length, streams)
    found = []
    at = offset
    for i in range(streams):
        size = base + (1 if i < extra else 0)
        if size:
            found.append((at, size))
        at += size
    return found


async def parallel_ranges(
    http: aiohttp.ClientSession, url: str, offset: int, length: int, streams: int
) -> tuple[float, float]:
    """Read ``[offset, offset + length)`` as ``streams`` ranged GETs at once; returns (seconds,
    seconds to the first byte of any piece)."""
    started = time.perf_counter()
    firsts = await asyncio.gather(
        *(range_read(http, url, at, size, started) for at, size in pieces(offset, length, streams))
    )
    return time.perf_counter() - started, min(firsts)


async def read_span(
    target: Target, key: str, offset: int, length: int, whole: bool
) -> tuple[float, float, int]:
    """Read a span the way the contender reads: the limit as parallel ranges, anyone else as
    one GET (a plain GET when ``whole``, else one ranged GET). Returns (seconds, first byte,
    requests made)."""
    url = target.url(key)
    if target.name == "limit":
        async with session(LIMIT_STREAMS) as http:
            seconds, ttfb = await parallel_ranges(http, url, offset, length, LIMIT_STREAMS)
        return seconds, ttfb, len(pieces(offset, length, LIMIT_STREAMS))
    async with session(1) as http:
        if whole:
            seconds, ttfb = await get_whole(http, url, length, True)
        else:
            started = time.perf_counter()
            ttfb = await range_read(http, url, offset, length, started)
            seconds = time.perf_counter() - started
    return seconds, ttfb, 1


def _sample(length: int, seconds: float, ttfb: float, requests: int) -> Sample:
    return Sample(
        {"mb_s": length / seconds / 1e6, "seconds": seconds, "ttfb_ms": ttfb * 1e3},
        length,
        requests=requests,
    )


def sequential(sizes: Sizes) -> Runner:
    """The whole big object, from its first byte to its last."""

    async def run(target: Target, _: int) -> Sample:
        seconds, ttfb, requests = await read_span(
            target, dataset.SEQUENTIAL_KEY, 0, sizes.sequential, whole=True
        )
        return _sample(sizes.sequential, seconds, ttfb, requests)

    return run


def region(sizes: Sizes) -> Runner:
    """``sizes.region`` bytes of the big object from an offset the server has not read: a
    different region in each run, as one ranged GET (the limit: as parallel ranges)."""

    async def run(target: Target, repetition: int) -> Sample:
        offset = dataset.region_offset(sizes, repetition)
        seconds, ttfb, requests = await read_span(
            target, dataset.SEQUENTIAL_KEY, offset, sizes.region, whole=False
        )
        return _sample(sizes.region, seconds, ttfb, requests)

    return run


def staggered_readers(key: str, size: int, readers: int) -> Runner:
    """``readers`` clients at once, each reading the whole object from its own offset: reader
    i starts ``i / readers`` of the way in, reads to the end, then from the start up to
    there (two ranged GETs, each checked at its offset). No two read the same block at
    once, so each needs blocks of its own in memory: the worst case for a memory target,
    where readers that start together share their blocks."""

    async def run(target: Target, _: int) -> Sample:
        url = target.url(key)
        starts = [at for at, _ in pieces(0, size, readers)]

        async def whole_from(http: aiohttp.ClientSession, at: int) -> None:
            await range_read(http, url, at, size - at, started)
            if at:
                await range_read(http, url, 0, at, started)

        async with session(readers) as http:
            started = time.perf_counter()
            await asyncio.gather(*(whole_from(http, at) for at in starts))
            seconds = time.perf_counter() - started
        served = size * readers
        return Sample({"mb_s": served / seconds / 1e6, "seconds": seconds}, served,
                      requests=sum(2 if at else 1 for at in starts))

    return run


def spread_readers(sizes: Sizes) -> Runner:
    """``sizes.workers_readers`` clients at once, each reading its own slice of the big object
    as one ranged GET on its own connection: sequential reads that several worker processes
    can share between them."""

    async def run(target: Target, _: int) -> Sample:
        slices = pieces(0, sizes.sequential, sizes.workers_readers)
        url = target.url(dataset.SEQUENTIAL_KEY)
        async with session(len(slices)) as http:
            started = time.perf_counter()
            await asyncio.gather(*(range_read(http, url, at, n, started) for at, n in slices))
            seconds = time.perf_counter() - started
        return Sample({"mb_s": sizes.sequential / seconds / 1e6, "seconds": seconds},
                      sizes.sequential, requests=len(slices))

    return run

"""The data every contender reads: its sizes, its content, and writing it into s3rver once.

Object content is a fixed pseudo-random pattern whose period (4 MiB - 3 bytes) is not a power
of two, so the bytes at any offset are known without storing them, and a read served from the
wrong offset (by a block size, a part size) does not match.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import aiohttp

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
BUCKET = "bench"
PERIOD = 4 * MiB - 3

SEQUENTIAL_KEY = "seq.bin"  # the big object: sequential, random ranges, many readers
SHARED_KEY = "shared.bin"  # the object concurrent readers share


def small_key(i: int) -> str:
    return f"small/{i:05d}.bin"


# The objects the workers' scaling reads, each key once: many more than the small GETs'.
MANY_FORMAT = "many/%06d.bin"


def many_key(i: int) -> str:
    return MANY_FORMAT % i


def listing_key(i: int) -> str:
    return f"list/{i:05d}.txt"


LISTING_PREFIX = "list/"


@dataclass(frozen=True, slots=True)
class Sizes:
    sequential: int
    shared: int
    shared_readers: int
    ranges: int
    range_length: int
    small_count: int
    small_size: int
    small_concurrency: int
    listing: int
    put: int
    memory_readers: int
    # A region of the big object read as a range (a seek, then a sequential read), a different
    # one each run: the window's ramp from a cold start, as a read into a large file sees it.
    region: int = 256 * MiB
    workers_readers: int = 4  # concurrent sequential readers in the workers' scaling workload
    # The workers' 4 KiB GETs (wrk, for a fixed time): objects in s3rver, files in the
    # local-folder share (cheap to write, and a gateway there answers several times faster),
    # each enough that no key is asked for twice in a run.
    workers_seconds: float = 4.0
    workers_keys: int = 12_000
    workers_files: int = 60_000


FULL = Sizes(
    sequential=1 * GiB,
    shared=256 * MiB,
    shared_readers=8,
    ranges=1000,
    range_length=64 * KiB,
    small_count=2000,
    small_size=4 * KiB,
    small_concurrency=16,
    listing=10_000,
    put=1 * GiB,
    memory_readers=32,
    region=256 * MiB,
)

QUICK = Sizes(
    sequential=64 * MiB,
    shared=32 * MiB,
    shared_readers=8,
    ranges=100,
    range_length=64 * KiB,
    small_count=200,
    small_size=4 * KiB,
    small_concurrency=16,
    listing=1000,
    put=64 * MiB,
    memory_readers=8,
    region=16 * MiB,
    workers_seconds=1.0,
    workers_keys=3_000,
    workers_files=10_000,
)


@cache
def _doubled_pattern() -> bytes:
    pattern = random.Random(20240601).randbytes(PERIOD)
    return pattern + pattern


def content(offset: int, length: int) -> bytes:
    """The bytes ``[offset, offset + length)`` of every large object."""
    doubled = _doubled_pattern()
    parts: list[bytes] = []
    while length > 0:
        start = offset % PERIOD
        take = min(length, PERIOD)
        parts.append(doubled[start : start + take])
        offset += take
        length -= take
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def stream(size: int, chunk: int = 1 * MiB) -> AsyncIterator[bytes]:
    """The content of a ``size``-byte object, in chunks, for uploads."""
    for offset in range(0, size, chunk):
        yield content(offset, min(chunk, size - offset))


# The groups of objects a workload can need (``Workload.needs``).
GROUPS = ("sequential", "shared", "small", "listing", "many")


def region_offset(sizes: Sizes, repetition: int) -> int:
    """Where run ``repetition`` of the region workload starts: a different region each run,
    never the start of the object (that is a seek into the middle, as a video player or a
    model loader makes)."""
    regions = max(1, sizes.sequential // sizes.region)
    return (repetition + 1) % regions * sizes.region


def write_local(directory: Path, sizes: Sizes, groups: Collection[str] = ("sequential",)
                ) -> None:
    """The objects of ``groups`` ("sequential", "many") as files of a local folder, for the
    local-folder shares."""
    directory.mkdir(parents=True, exist_ok=True)
    if "sequential" in groups:
        with open(directory / SEQUENTIAL_KEY, "wb") as out:
            for offset in range(0, sizes.sequential, 4 * MiB):
                out.write(content(offset, min(4 * MiB, sizes.sequential - offset)))
    if "many" in groups:
        (directory / many_key(0)).parent.mkdir(parents=True, exist_ok=True)
        small = content(0, sizes.small_size)
        for i in range(sizes.workers_files):
            (directory / many_key(i)).write_bytes(small)


async def populate(
    endpoint: str, sizes: Sizes, groups: Collection[str] = GROUPS, concurrency: int = 16
) -> None:
    """Create the bucket and the objects of ``groups``, straight into s3rver (no proxy).

    s3rver accepts anonymous requests, so plain HTTP PUTs are enough here."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def put(key: str, body: bytes | AsyncIterator[bytes], size: int) -> None:
            headers = {"Content-Length": str(size)}
            async with session.put(f"{endpoint}/{BUCKET}/{key}", data=body, headers=headers) as r:
                if r.status != 200:
                    raise RuntimeError(f"s3rver refused PUT {key}: {r.status} {await r.text()}")

        async with session.put(f"{endpoint}/{BUCKET}") as r:
            if r.status not in (200, 409):
                raise RuntimeError(f"s3rver refused to create the bucket: {r.status}")
        if "sequential" in groups:
            await put(SEQUENTIAL_KEY, stream(sizes.sequential), sizes.sequential)
        if "shared" in groups:
            await put(SHARED_KEY, stream(sizes.shared), sizes.shared)
        gate = asyncio.Semaphore(concurrency)

        async def put_small(key: str, body: bytes) -> None:
            async with gate:
                await put(key, body, len(body))

        small = content(0, sizes.small_size)
        note = b"one of many small objects in a large folder\n"
        smalls = sizes.small_count if "small" in groups else 0
        notes = sizes.listing if "listing" in groups else 0
        many = sizes.workers_keys if "many" in groups else 0
        await asyncio.gather(
            *(put_small(small_key(i), small) for i in range(smalls)),
            *(put_small(many_key(i), small) for i in range(many)),
            *(put_small(listing_key(i), note) for i in range(notes)),
        )


async def delete(endpoint: str, key: str) -> None:
    """Remove an object the benchmark wrote (PUT workloads), straight from s3rver."""
    async with aiohttp.ClientSession() as session, session.delete(
        f"{endpoint}/{BUCKET}/{key}"
    ) as r:
        if r.status not in (200, 204, 404):
            raise RuntimeError(f"s3rver refused DELETE {key}: {r.status}")

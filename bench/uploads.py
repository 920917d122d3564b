"""Uploads, and the best a client can do on the shaped backend: the limit of a PUT.

The ``limit`` contender uploads the object as an S3 multipart upload straight to the store
through the same shaping proxy: CreateMultipartUpload, parts of ``LIMIT_PART`` bytes with
``LIMIT_STREAMS`` UploadParts in flight at once, each on its own connection, then
CompleteMultipartUpload. With a per-connection bandwidth cap, parallel parts are the fastest
way to move one object in; a gateway that uploads with parallel parts can at best match it.
The clock runs from the first request to the final 200, as for the other contenders; the
CompleteMultipartUpload alone is timed too, since the backend combines the parts there (s3rver
re-reads, hashes and rewrites the whole object) while no byte crosses the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from xml.sax.saxutils import escape

import aiohttp

from bench import dataset, workloads
from bench.dataset import Sizes
from bench.workloads import Runner, Sample, Target, _check, get_whole, put_key, session

LIMIT_STREAMS = 8
LIMIT_PART = 8 * dataset.MiB

_UPLOAD_ID = re.compile(rb"<UploadId>([^<]+)</UploadId>")
_ERROR = re.compile(rb"<Error>")


def parts(size: int, part: int) -> list[tuple[int, int, int]]:
    """(part number, offset, length) of the parts that tile ``[0, size)`` exactly, numbered
    from 1 as S3 wants; the last one shorter when ``part`` does not divide ``size``."""
    return [(i + 1, at, min(part, size - at)) for i, at in enumerate(range(0, size, part))]


def complete_body(etags: list[str]) -> bytes:
    """The CompleteMultipartUpload request body listing parts 1..n with their ETags."""
    listed = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{escape(tag)}</ETag></Part>"
        for n, tag in enumerate(etags, start=1)
    )
    return f"<CompleteMultipartUpload>{listed}</CompleteMultipartUpload>".encode()


def upload_id(body: bytes) -> str:
    found = _UPLOAD_ID.search(body)
    if found is None:
        raise RuntimeError(f"CreateMultipartUpload answered no UploadId: {body[:200]!r}")
    return found.group(1).decode()


async def _upload_part(
    http: aiohttp.ClientSession, url: str, uid: str, number: int, offset: int, length: int
) -> str:
    params = {"partNumber": str(number), "uploadId": uid}
    body = dataset.content(offset, length)
    async with http.put(url, params=params, data=body) as resp:
        await resp.read()
        _check(resp, 200, f"UploadPart {number} of {url}")
        etag = resp.headers.get("ETag")
    if not etag:
        raise RuntimeError(f"UploadPart {number} of {url} answered no ETag")
    return etag


async def multipart(
    http: aiohttp.ClientSession, url: str, size: int, part: int, streams: int
) -> tuple[float, float]:
    """Upload ``size`` bytes of the benchmark content to ``url`` as a multipart upload with
    ``streams`` parts in flight; returns (seconds to the final 200, seconds of the
    CompleteMultipartUpload alone). A failed upload is aborted, so s3rver keeps no parts."""
    started = time.perf_counter()
    async with http.post(url + "?uploads") as resp:
        created = await resp.read()
        _check(resp, 200, f"CreateMultipartUpload {url}")
    uid = upload_id(created)
    try:
        gate = asyncio.Semaphore(streams)

        async def one(number: int, offset: int, length: int) -> str:
            async with gate:
                return await _upload_part(http, url, uid, number, offset, length)

        etags = await asyncio.gather(*(one(*p) for p in parts(size, part)))
        completing = time.perf_counter()
        async with http.post(url, params={"uploadId": uid}, data=complete_body(etags)) as resp:
            answer = await resp.read()
            _check(resp, 200, f"CompleteMultipartUpload {url}")
        # S3 may answer 200 and put the error in the body.
        if _ERROR.search(answer):
            raise RuntimeError(f"CompleteMultipartUpload {url} failed: {answer[:200]!r}")
    except Exception:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.delete(url, params={"uploadId": uid}) as resp:
                await resp.read()
        raise
    done = time.perf_counter()
    return done - started, done - completing


def put(sizes: Sizes) -> Runner:
    """One PUT of a new object: the limit as a direct multipart upload, anyone else as one
    streamed PUT with a Content-Length (``workloads.put``)."""
    single = workloads.put(sizes)

    async def run(target: Target, repetition: int) -> Sample:
        if target.name != "limit":
            return await single(target, repetition)
        key = put_key(target.name, repetition)
        async with session(LIMIT_STREAMS) as http:
            seconds, completing = await multipart(
                http, target.url(key), sizes.put, LIMIT_PART, LIMIT_STREAMS
            )
            # The bytes the store now holds are the proof, as for the single PUT.
            await get_whole(http, target.stored(key), sizes.put, True)
        count = len(parts(sizes.put, LIMIT_PART))
        return Sample(
            {"mb_s": sizes.put / seconds / 1e6, "seconds": seconds, "complete_s": completing},
            sizes.put,
            [f"CompleteMultipartUpload of {count} parts took {completing:.2f} s "
             f"of the {seconds:.2f} s"],
            requests=count + 2,
        )

    return run

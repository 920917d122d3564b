"""The workers' sequential readers driven by ``curl`` (C), each byte checked after the clock.

Reading and checking a GiB in Python (aiohttp, then comparing every chunk with the known
content) costs the client about as much CPU as the gateway spends serving it, and on 2 cores
that caps what two workers can show at what the client can take (about 400 MB/s here). So
each reader is one ``curl`` process reading its slice as one ranged GET into a file in memory
(``/dev/shm``); the clock stops when the last one is done, and only then is every slice
checked byte for byte against the content at its offset (its status and length too).

Without curl the aiohttp readers (``reads.spread_readers``) stand in, with a note.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from bench import dataset
from bench.dataset import Sizes
from bench.reads import pieces, spread_readers
from bench.workloads import Runner, Sample, Target

FALLBACK = "curl not installed: the aiohttp readers (Python) drove it"
MEMORY = Path("/dev/shm")
CHECK_CHUNK = 4 * dataset.MiB


def scratch() -> str:
    """Where the slices land: memory when the machine has it, so writing them costs no disk."""
    return str(MEMORY) if MEMORY.is_dir() else tempfile.gettempdir()


def check(path: Path, offset: int, length: int, status: str, got: str) -> None:
    """The slice read into ``path`` is ``[offset, offset + length)`` of the content."""
    if status != "206" or int(got) != length:
        raise RuntimeError(f"range at {offset}: status {status}, {got} bytes, expected 206 "
                           f"and {length}")
    with open(path, "rb") as f:
        done = 0
        while done < length:
            chunk = f.read(min(CHECK_CHUNK, length - done))
            if not chunk or chunk != dataset.content(offset + done, len(chunk)):
                raise RuntimeError(f"wrong bytes at offset {offset + done} of the range at "
                                   f"{offset}")
            done += len(chunk)


async def curl_readers(curl: str, url: str, size: int, readers: int) -> Sample:
    slices = pieces(0, size, readers)
    with tempfile.TemporaryDirectory(prefix="bench-curl-", dir=scratch()) as tmp:
        outs = [Path(tmp, f"slice-{i}") for i in range(len(slices))]
        started = time.perf_counter()
        procs = [
            await asyncio.create_subprocess_exec(
                curl, "-sS", "-r", f"{at}-{at + n - 1}", "-o", str(out),
                "-w", "%{http_code} %{size_download}", url,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            for (at, n), out in zip(slices, outs, strict=True)
        ]
        try:
            answers = await asyncio.gather(*(p.communicate() for p in procs))
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await p.wait()
        seconds = time.perf_counter() - started
        for p, (out, err), (at, n), path in zip(procs, answers, slices, outs, strict=True):
            if p.returncode != 0:
                raise RuntimeError(f"curl of the range at {at} exited with status "
                                   f"{p.returncode}: {err.decode(errors='replace').strip()}")
            status, got = out.decode().split()
            await asyncio.to_thread(check, path, at, n, status, got)
    return Sample({"mb_s": size / seconds / 1e6, "seconds": seconds}, size,
                  requests=len(slices))


def spread(sizes: Sizes) -> Runner:
    """``sizes.workers_readers`` readers at once, each of its own slice of the big object."""
    fallback = spread_readers(sizes)

    async def run(target: Target, repetition: int) -> Sample:
        curl = shutil.which("curl")
        if curl is None:
            sample = await fallback(target, repetition)
            sample.notes.append(FALLBACK)
            return sample
        return await curl_readers(curl, target.url(dataset.SEQUENTIAL_KEY), sizes.sequential,
                                  sizes.workers_readers)

    return run

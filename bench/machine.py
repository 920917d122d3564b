"""The machine's memory as a run finds it: how much is free, and starting from the same state.

s3rver combines a multipart upload's parts by writing the whole object anew, so a PUT through
it needs a gigabyte of free pages; on a machine whose page cache already fills the memory
(files written before the run), each must first be taken back from the cache, which made its
CompleteMultipartUpload about 40% slower (figures: bench/README.md). A run therefore drops the
clean page cache before it writes its data set, so that files left by earlier work do not
take its free memory. (It does not make the completes the same from run to run: other
causes remain, bench/README.md.)
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.dataset import GiB

MEMINFO = Path("/proc/meminfo")
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def meminfo_bytes(text: str, field: str) -> int | None:
    """One field of /proc/meminfo in bytes (the file gives kB), or None when it is absent."""
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name == field:
            return int(rest.split()[0]) * 1024
    return None


def free_gib(meminfo: Path = MEMINFO) -> float | None:
    """Memory no one uses, not even the page cache (MemFree), in GiB; None off Linux."""
    try:
        found = meminfo_bytes(meminfo.read_text(), "MemFree")
    except OSError:
        return None
    return None if found is None else found / GiB


def drop_page_cache(control: Path = DROP_CACHES, meminfo: Path = MEMINFO) -> str:
    """Write dirty pages out, then drop the clean page cache (root only); returns the line
    to log, which says what was done and the free memory after it."""
    os.sync()
    try:
        control.write_text("1\n")  # 1: the page cache only; dentries and inodes stay
    except OSError as exc:  # not root, or /proc/sys read-only (a container)
        done = f"page cache kept: {control} cannot be written ({exc.strerror or exc})"
    else:
        done = "page cache dropped"
    free = free_gib(meminfo)
    return done + ("" if free is None else f": {free:.1f} GiB free")

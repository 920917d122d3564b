"""The workloads of a benchmark run, in the order they run, with their sizes in their titles."""

from __future__ import annotations

from bench import dataset, reads, uploads, wrk
from bench.dataset import Sizes
from bench.workloads import (
    FOOTPRINT_TARGET_MIB,
    Workload,
    listing,
    random_ranges,
    shared_readers,
    small_gets,
)

# Contenders that use the store through the proxy; "limit" reads big objects as parallel
# ranges (and writes one as parallel multipart parts) and is only shown where that differs
# from one connection.
STORE = ("direct", "limit", "bucketdav", "rclone")
# One worker against two. On s3rver, unshaped: direct (straight to s3rver) shows what the
# backend allows on the same cores, a ceiling for both. On a local-folder share of the same
# files: what the gateway's own work lets two workers do (nothing else to wait on).
WORKERS = ("direct", "bucketdav", "bucketdav-2w")
WORKERS_LOCAL = ("bucketdav", "bucketdav-2w")


def size(n: int) -> str:
    for unit, scale in (("GiB", dataset.GiB), ("MiB", dataset.MiB), ("KiB", dataset.KiB)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


def build(sizes: Sizes) -> list[Workload]:
    readers = sizes.shared_readers
    seq = size(sizes.sequential)
    return [
        Workload("sequential", f"Sequential read, {seq}", ("mb_s", "ttfb_ms"),
                 reads.sequential(sizes), contenders=STORE),
        Workload("region", f"Sequential read, {size(sizes.region)} from an offset not read "
                 "before", ("mb_s", "ttfb_ms"), reads.region(sizes), contenders=STORE),
        Workload("shared", f"{readers} concurrent readers of one {size(sizes.shared)} object",
                 ("mb_s",), shared_readers(dataset.SHARED_KEY, sizes.shared, readers, True),
                 needs=("shared",)),
        Workload("ranges", f"{sizes.ranges:,} random {size(sizes.range_length)} range reads",
                 ("p50_ms", "p99_ms"), random_ranges(sizes)),
        Workload("small", f"{size(sizes.small_size)} GETs at concurrency "
                 f"{sizes.small_concurrency}", ("rps", "p50_ms"), small_gets(sizes),
                 contenders=("direct", "forwarder", "bucketdav", "rclone"), needs=("small",)),
        Workload("listing", f"PROPFIND Depth 1, folder of {sizes.listing:,} objects",
                 ("total_ms", "ttfb_ms"), listing(sizes), needs=("listing",)),
        Workload("put", f"PUT of {size(sizes.put)}", ("mb_s",), uploads.put(sizes),
                 contenders=STORE, upload=True, needs=()),
        Workload("workers", f"Workers 1 vs 2: {size(sizes.small_size)} GETs at concurrency "
                 f"{sizes.small_concurrency} (wrk), local-folder share",
                 ("rps", "p50_ms"), wrk.gets(sizes, sizes.workers_files),
                 contenders=WORKERS_LOCAL, needs=("many",), local_share=True),
        Workload("workers-s3", f"Workers 1 vs 2: {size(sizes.small_size)} GETs at concurrency "
                 f"{sizes.small_concurrency} (wrk), s3rver unshaped", ("rps", "p50_ms"),
                 wrk.gets(sizes, sizes.workers_keys), contenders=WORKERS, needs=("many",),
                 unshaped=True),
        Workload("workers-seq", f"Workers 1 vs 2: {sizes.workers_readers} readers of "
                 f"{size(sizes.sequential // sizes.workers_readers)} each, local-folder share",
                 ("mb_s",), reads.spread_readers(sizes), contenders=WORKERS_LOCAL,
                 local_share=True),
        Workload("workers-seq-s3", f"Workers 1 vs 2: {sizes.workers_readers} readers of "
                 f"{size(sizes.sequential // sizes.workers_readers)} each, s3rver unshaped",
                 ("mb_s",), reads.spread_readers(sizes), contenders=WORKERS, unshaped=True),
        Workload("cache", f"Disk cache: second read of {seq} after a restart, against a "
                 "local-folder share", ("mb_s", "ttfb_ms"), reads.sequential(sizes),
                 contenders=("bucketdav", "local"), disk_cache=True),
        Workload("cache-memory", f"Disk cache: {sizes.memory_readers} concurrent readers of "
                 f"{seq} after a restart, each from its own offset", ("peak_rss_mib", "mb_s"),
                 reads.staggered_readers(dataset.SEQUENTIAL_KEY, sizes.sequential,
                                         sizes.memory_readers),
                 contenders=("bucketdav",), repeat=False, disk_cache=True),
        Workload("memory", f"Memory: {sizes.memory_readers} concurrent readers of one "
                 f"{seq} object", ("peak_rss_mib", "mb_s"),
                 shared_readers(dataset.SEQUENTIAL_KEY, sizes.sequential,
                                sizes.memory_readers, True),
                 # Only bucketdav has a memory target to keep; rclone pulling 32 GiB through
                 # the proxy would add minutes to the run and measure nothing asked for.
                 contenders=("bucketdav",), repeat=False),
        Workload("footprint", f"Footprint: at rest, then one reader of {seq}, "
                 f"--memory-target {FOOTPRINT_TARGET_MIB}",
                 ("rest_rss_mib", "peak_rss_mib"), reads.sequential(sizes),
                 contenders=("bucketdav",), repeat=False,
                 memory_target_mib=FOOTPRINT_TARGET_MIB, at_rest=True),
    ]

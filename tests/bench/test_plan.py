"""What a run writes, runs and notes for the workers' scaling: the local-folder shares get
their files in the folder (not in s3rver), naming a workers' workload brings its s3rver
context along, and how the CPU split between the workers is shown."""

from __future__ import annotations

from bench import dataset, plan
from bench.__main__ import with_context
from bench.runner import data_groups, split_note


def chosen(*keys: str) -> list[plan.Workload]:
    return [w for w in plan.build(dataset.QUICK) if w.key in keys]


def test_a_local_share_writes_its_files_into_the_folder_only() -> None:
    bucket, local = data_groups(chosen("workers", "workers-seq"), ["bucketdav", "bucketdav-2w"])
    assert (bucket, local) == (set(), {"many", "sequential"})
    bucket, local = data_groups(chosen("workers-s3", "cache"), ["direct", "bucketdav"])
    assert (bucket, local) == ({"many", "sequential"}, set())
    assert data_groups(chosen("cache"), ["bucketdav", "local"])[1] == {"sequential"}


def test_the_workers_workloads_bring_their_context() -> None:
    assert with_context(("workers", "workers-seq")) == (
        "workers", "workers-seq", "workers-s3", "workers-seq-s3")
    assert with_context(("workers-s3", "small")) == ("workers-s3", "small")
    assert with_context(("workers", "workers-s3")) == ("workers", "workers-s3")


def test_how_the_cpu_split_between_workers_is_noted() -> None:
    # The parent of two workers barely works: the two busiest processes are the workers.
    assert split_note([3.1, 1.0, 0.01], 2) == "CPU seconds per worker: 3.10, 1.00"
    # every connection on one worker: the other shows as idle
    assert split_note([2.0, 0.02, 0.01], 2) == "CPU seconds per worker: 2.00, 0.02"
    assert split_note([2.0], 1) is None  # one process: nothing to split

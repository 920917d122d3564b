"""The options of a small run, for tests that build a rig or part of one."""

from __future__ import annotations

from bench import dataset
from bench.runner import Options


def options() -> Options:
    return Options(sizes=dataset.QUICK, runs=1, bandwidth_mb=50, latency_ms=20,
                   memory_target_mib=512, only=(), contenders=(), bucketdav_args=(),
                   rclone_args=(), timeout=60, keep_logs=None)

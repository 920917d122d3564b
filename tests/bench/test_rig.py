"""What a run does before its first measurement: the data set is written into s3rver and
then on disk, so the kernel's writeback of it does not run under the first workloads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bench import dataset, machine, plan, runner
from tests.bench.options import options


def test_the_data_set_is_on_disk_before_the_first_measurement(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []

    async def populate(*_: Any) -> None:
        events.append("data set written")

    monkeypatch.setattr(machine, "drop_page_cache", lambda: "page cache kept")
    monkeypatch.setattr(dataset, "populate", populate)
    monkeypatch.setattr(os, "sync", lambda: events.append("sync"))
    monkeypatch.setattr(runner.tempfile, "tempdir", str(tmp_path))
    (small,) = [w for w in plan.build(dataset.QUICK) if w.key == "small"]
    with runner.rig(options(), [small], ["direct"]):
        events.append("first measurement")
    assert events == ["data set written", "sync", "first measurement"]

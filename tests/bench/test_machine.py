"""A run starts from the same memory: it drops the clean page cache where it may, says so
where it may not, and reports the free memory it then has."""

from __future__ import annotations

from pathlib import Path

from bench import machine

MEMINFO = """MemTotal:       24683520 kB
MemFree:         2516582 kB
MemAvailable:   23940000 kB
Cached:         20000000 kB
"""


def test_a_meminfo_field_is_read_in_bytes() -> None:
    assert machine.meminfo_bytes(MEMINFO, "MemFree") == 2516582 * 1024
    assert machine.meminfo_bytes(MEMINFO, "MemAvailable") == 23940000 * 1024


def test_a_field_that_is_absent_is_none_not_another_field() -> None:
    assert machine.meminfo_bytes(MEMINFO, "Mem") is None
    assert machine.meminfo_bytes(MEMINFO, "SwapFree") is None


def test_free_memory_is_memfree_not_what_the_page_cache_could_give_back(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(MEMINFO)
    assert machine.free_gib(meminfo) == 2516582 * 1024 / machine.GiB


def test_free_memory_is_unknown_without_proc(tmp_path: Path) -> None:
    assert machine.free_gib(tmp_path / "absent") is None


def test_the_page_cache_is_dropped_through_the_kernels_control(tmp_path: Path) -> None:
    control = tmp_path / "drop_caches"
    control.write_text("")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(MEMINFO)
    said = machine.drop_page_cache(control, meminfo)
    assert control.read_text() == "1\n"  # the page cache, not dentries and inodes
    assert said == "page cache dropped: 2.4 GiB free"


def test_without_the_right_to_drop_it_the_run_goes_on_and_says_so(tmp_path: Path) -> None:
    control = tmp_path / "drop_caches"
    control.mkdir()  # cannot be written, as /proc/sys/vm/drop_caches for a user
    said = machine.drop_page_cache(control, tmp_path / "absent")
    assert said == f"page cache kept: {control} cannot be written (Is a directory)"

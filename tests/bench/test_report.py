"""The benchmark's verdicts cannot flatter: a target is met only when every run it compares
succeeded and the medians meet it; a failure is NOT met and is shown, never hidden behind the
median of the runs that happened to work; a feature bucketdav does not have yet is n/a, never
met. Judged on hand-made results: no rig is started.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict

import pytest

from bench import dataset, reads, report, targets, wrk
from bench.plan import build
from bench.runner import Measurement, Results
from bench.workloads import NOT_BUILT

MiB = 1024 * 1024
GiB = 1024 * MiB
SEQUENTIAL = "Sequential read: bucketdav ≥ 0.9× the limit (direct, 8 parallel ranges)"
REGION = "Sequential read from an offset not read before: bucketdav ≥ 0.9× the limit"
SMALL_RPS = "Small GETs: ≥ 0.95× direct requests/s"
SMALL_P50 = "Small GETs: p50 within 3 ms of direct's"
LIST_TOTAL = "PROPFIND Depth 1: total ≤ 1.15× the direct paged LIST"
LIST_TTFB = "PROPFIND Depth 1: first byte ≤ 150 ms"
PUT = "PUT: ≥ 3× a single direct connection"
WORKERS = "Workers: 2 workers ≥ 1.6× one on 4 KiB GETs/s (local-folder share, wrk)"
CACHE_BYTES = "Disk cache: second read costs < 1% of the object from the backend"
CACHE_SPEED = "Disk cache: second read ≥ 0.8× a local-folder share"
CACHE_MEMORY = "Disk cache: many concurrent readers stay under --memory-target"
CPU = "CPU per GiB of sequential read ≤ half of the baseline (before issue 11)"


def results(*measurements: Measurement, skipped: dict[str, str] | None = None) -> Results:
    options = {"sizes": asdict(dataset.QUICK), "memory_target_mib": 512, "runs": 3}
    return Results(options, {}, list(measurements), skipped or {})


def ok(workload: str, contender: str, run: int, **metrics: float) -> Measurement:
    return Measurement(workload, contender, run, metrics=dict(metrics))


def failed(workload: str, contender: str, run: int, error: str) -> Measurement:
    return Measurement(workload, contender, run, error=error + "\nTraceback tail")


def runs(workload: str, metric: str, **by_contender: list[float | str]) -> list[Measurement]:
    """Runs of one workload; a string is a failed run with that error."""
    found = []
    for name, values in by_contender.items():
        for i, value in enumerate(values):
            found.append(failed(workload, name, i, value) if isinstance(value, str)
                         else ok(workload, name, i, **{metric: value}))
    return found


def sequential(bucketdav: list[float | str], limit: list[float | str]) -> list[Measurement]:
    return runs("sequential", "mb_s", bucketdav=bucketdav, limit=limit)


def verdict(res: Results, goal: str) -> targets.Verdict:
    (found,) = [v for v in targets.targets(res, 32 * MiB, 512) if v.goal == goal]
    return found


def test_a_target_is_met_when_every_run_succeeded_and_the_median_meets_it() -> None:
    res = results(*sequential([350, 360, 370], [380, 400, 390]))
    found = verdict(res, SEQUENTIAL)
    assert found.status == "met"
    assert found.detail == "360.0 vs 390.0 MB/s = 0.92×"


def test_a_median_below_the_target_is_not_met() -> None:
    res = results(*sequential([300, 340, 350], [390, 390, 390]))  # 0.87×
    assert verdict(res, SEQUENTIAL).status == "NOT met"


def test_two_failed_runs_of_three_are_not_met_though_the_good_run_would_meet_it() -> None:
    res = results(*sequential([500, "RuntimeError: wrong bytes at offset 7", "TimeoutError: "],
                              [390, 390, 390]))
    found = verdict(res, SEQUENTIAL)
    assert found.status == "NOT met"
    assert "bucketdav run 2 failed: RuntimeError: wrong bytes at offset 7" in found.detail
    assert "bucketdav run 3 failed: TimeoutError:" in found.detail


def test_bucketdav_failing_every_run_is_not_met_rather_than_na() -> None:
    res = results(*sequential(["OSError: refused"] * 3, [390, 390, 390]))
    found = verdict(res, SEQUENTIAL)
    assert found.status == "NOT met"
    assert "bucketdav run 1 failed: OSError: refused" in found.detail


def test_a_failed_run_of_the_limit_is_not_met() -> None:
    res = results(*sequential([380, 380, 380], [390, "RuntimeError: range at 8 short", 390]))
    found = verdict(res, SEQUENTIAL)
    assert found.status == "NOT met"
    assert "limit run 2 failed: RuntimeError: range at 8 short" in found.detail


def test_bucketdav_not_offering_the_workload_is_not_met() -> None:
    res = results(Measurement("sequential", "bucketdav", 0, unavailable="GET answered 405"),
                  ok("sequential", "limit", 0, mb_s=390))
    found = verdict(res, SEQUENTIAL)
    assert found.status == "NOT met"
    assert "GET answered 405" in found.detail


def test_what_this_run_did_not_measure_is_na_not_met() -> None:
    skipped = results(*runs("shared", "mb_s", bucketdav=[900]), skipped={"rclone": "absent"})
    shared = "Concurrent readers of one object: aggregate ≥ 2× rclone"
    assert verdict(skipped, shared).status == "n/a"
    assert "rclone not run: absent" in verdict(skipped, shared).detail
    no_limit = results(*runs("sequential", "mb_s", bucketdav=[300]))
    assert verdict(no_limit, SEQUENTIAL).status == "n/a"
    nothing = results()
    assert {v.status for v in targets.targets(nothing, 32 * MiB, 512)} == {"n/a"}


def test_the_region_read_is_judged_against_the_limit_on_its_own_runs() -> None:
    res = results(*runs("region", "mb_s", bucketdav=[300, 310, 320], limit=[390, 400, 410]),
                  *sequential([380, 380, 380], [390, 390, 390]))
    assert verdict(res, REGION).status == "NOT met"  # 310 / 400 = 0.78×
    assert verdict(res, SEQUENTIAL).status == "met"


def test_small_gets_need_the_rate_and_the_p50_of_direct() -> None:
    res = results(ok("small", "bucketdav", 0, rps=660, p50_ms=26.0),
                  ok("small", "direct", 0, rps=685, p50_ms=22.5))
    assert verdict(res, SMALL_RPS).status == "met"  # 0.96×
    assert verdict(res, SMALL_P50).status == "NOT met"  # 3.5 ms slower
    res = results(ok("small", "bucketdav", 0, rps=600, p50_ms=24.0),
                  ok("small", "direct", 0, rps=685, p50_ms=22.5))
    assert verdict(res, SMALL_RPS).status == "NOT met"
    assert verdict(res, SMALL_P50).status == "met"


def test_small_gets_show_a_bare_forwarder_beside_the_target_without_judging_on_it() -> None:
    mine = [ok("small", "bucketdav", 0, rps=600, p50_ms=24.0),
            ok("small", "direct", 0, rps=680, p50_ms=22.5)]
    found = verdict(results(*mine, ok("small", "forwarder", 0, rps=650, p50_ms=23.0)), SMALL_RPS)
    assert found.status == "NOT met"  # 0.88× direct, whatever the forwarder reached
    assert found.detail == ("600.0 vs 680.0 req/s = 0.88×; a bare forwarder vs direct: 650 vs "
                            "680 req/s = 0.96×")
    met = [ok("small", "bucketdav", 0, rps=660, p50_ms=24.0),
           ok("small", "direct", 0, rps=680, p50_ms=22.5)]
    found = verdict(results(*met, failed("small", "forwarder", 0, "RuntimeError: boom")),
                    SMALL_RPS)
    assert found.status == "met" and "forwarder vs direct: failed vs 680 req/s" in found.detail


def test_propfind_total_against_the_paged_list_and_its_first_byte() -> None:
    res = results(ok("listing", "bucketdav", 0, total_ms=1700, ttfb_ms=140),
                  ok("listing", "direct", 0, total_ms=1540, ttfb_ms=109))
    assert verdict(res, LIST_TOTAL).status == "met"  # 1.10×
    assert verdict(res, LIST_TTFB).status == "met"
    res = results(ok("listing", "bucketdav", 0, total_ms=2475, ttfb_ms=216),
                  ok("listing", "direct", 0, total_ms=1540, ttfb_ms=109))
    assert verdict(res, LIST_TOTAL).status == "NOT met"
    assert verdict(res, LIST_TTFB).status == "NOT met"
    assert verdict(res, LIST_TTFB).detail == "216.0 ms (at most 150)"


def test_put_against_three_single_connections() -> None:
    res = results(ok("put", "bucketdav", 0, mb_s=90.8), ok("put", "direct", 0, mb_s=44.7))
    assert verdict(res, PUT).status == "NOT met"  # 2.03×, today's
    res = results(ok("put", "bucketdav", 0, mb_s=140), ok("put", "direct", 0, mb_s=44.7))
    assert verdict(res, PUT).status == "met"


def test_put_shows_the_limit_beside_the_target_without_judging_on_it() -> None:
    mine = [ok("put", "bucketdav", 0, mb_s=120), ok("put", "direct", 0, mb_s=44.7)]
    found = verdict(results(*mine, ok("put", "limit", 0, mb_s=150)), PUT)
    assert found.status == "NOT met"  # 2.68× direct, whatever the limit
    assert found.detail == ("120.0 vs 44.7 MB/s = 2.68×; bucketdav vs the limit (direct "
                            "multipart): 120 vs 150 MB/s = 0.80×; the limit vs direct: 150 vs "
                            "44.7 MB/s = 3.36×")
    # A failed or missing limit is said beside the verdict; the verdict stays direct's.
    found = verdict(results(*mine, failed("put", "limit", 0, "RuntimeError: boom")), PUT)
    assert found.status == "NOT met"
    assert "(direct multipart): 120 vs failed MB/s = —; the limit vs direct: failed" in found.detail
    met = [ok("put", "bucketdav", 0, mb_s=140), ok("put", "direct", 0, mb_s=44.7)]
    found = verdict(results(*met), PUT)
    assert found.status == "met" and "140 vs not run MB/s = —" in found.detail


def test_two_workers_against_one() -> None:
    two: list[float | str] = [830, 840, 850]
    res = results(*runs("workers", "rps", bucketdav=[500, 510, 520], **{"bucketdav-2w": two}))
    assert verdict(res, WORKERS).status == "met"
    assert verdict(res, WORKERS).detail == "840.0 vs 510.0 req/s = 1.65×"
    two = [830, "RuntimeError: worker died", 850]
    res = results(*runs("workers", "rps", bucketdav=[500, 510, 520], **{"bucketdav-2w": two}))
    assert verdict(res, WORKERS).status == "NOT met"


def test_workers_are_judged_on_the_local_share_not_on_s3rver() -> None:
    # On s3rver one worker nears the backend: two cannot scale there, and that is context.
    s3 = runs("workers-s3", "rps", direct=[1400], bucketdav=[1300], **{"bucketdav-2w": [1350]})
    local = runs("workers", "rps", bucketdav=[2000], **{"bucketdav-2w": [3500]})
    assert verdict(results(*s3, *local), WORKERS).status == "met"
    assert verdict(results(*s3), WORKERS).status == "n/a"


def test_workers_driven_without_wrk_are_not_judged() -> None:
    local = runs("workers", "rps", bucketdav=[500], **{"bucketdav-2w": [900]})
    for m in local:
        m.notes.append(wrk.FALLBACK)
    found = verdict(results(*local), WORKERS)
    assert (found.status, found.detail) == ("n/a", wrk.FALLBACK)


def test_the_report_shows_the_scaling_of_every_workers_workload() -> None:
    s3 = runs("workers-s3", "rps", direct=[1400], bucketdav=[1300], **{"bucketdav-2w": [1350]})
    seq = runs("workers-seq", "mb_s", bucketdav=[600], **{"bucketdav-2w": [900]})
    lines = report.scaling_lines(results(*s3, *seq), build(dataset.QUICK))
    assert len(lines) == 2  # the workers GETs on the local share were not run
    assert lines[0].endswith("2 workers 1,350 vs 1 worker 1,300 requests/s = 1.04× "
                             "(direct to s3rver: 1,400)")
    assert lines[1].endswith("2 workers 900 vs 1 worker 600 MB/s = 1.50×")


def test_a_disk_cache_bucketdav_does_not_have_is_na_never_met() -> None:
    absent = f"{NOT_BUILT} bucketdav serve has no --cache option"
    res = results(*(Measurement("cache", "bucketdav", i, unavailable=absent) for i in range(3)),
                  *runs("cache", "mb_s", local=[900, 900, 900]),
                  Measurement("cache-memory", "bucketdav", 0, unavailable=absent))
    for goal in (CACHE_BYTES, CACHE_SPEED, CACHE_MEMORY):
        found = verdict(res, goal)
        assert found.status == "n/a"
        assert "has no --cache option" in found.detail


def test_a_disk_cache_that_fails_or_refetches_is_not_met() -> None:
    size = dataset.QUICK.sequential
    res = results(ok("cache", "bucketdav", 0, mb_s=800, backend_bytes=0.2 * size),
                  ok("cache", "local", 0, mb_s=900))
    assert verdict(res, CACHE_BYTES).status == "NOT met"  # 20% came from the backend
    assert verdict(res, CACHE_SPEED).status == "met"
    res = results(ok("cache", "bucketdav", 0, mb_s=800, backend_bytes=0.001 * size),
                  failed("cache", "bucketdav", 1, "RuntimeError: wrong bytes at offset 0"),
                  ok("cache", "local", 0, mb_s=900))
    assert verdict(res, CACHE_BYTES).status == "NOT met"
    assert "wrong bytes" in verdict(res, CACHE_SPEED).detail
    res = results(ok("cache", "bucketdav", 0, mb_s=600, backend_bytes=0.001 * size),
                  ok("cache", "local", 0, mb_s=900))
    assert verdict(res, CACHE_BYTES).status == "met"
    assert verdict(res, CACHE_SPEED).status == "NOT met"  # 0.67×
    over = results(ok("cache-memory", "bucketdav", 0, peak_rss_mib=530, mb_s=900))
    assert verdict(over, CACHE_MEMORY).status == "NOT met"
    assert verdict(over, CACHE_MEMORY).detail == "peak RSS 530 MiB, --memory-target 512 MiB"


def test_cpu_per_gib_against_the_recorded_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    res = results(ok("sequential", "bucketdav", 0, mb_s=300, cpu_s_per_gib=2.0))
    older = results(ok("sequential", "bucketdav", 0, mb_s=300))  # raw results without CPU
    assert verdict(older, CPU).status == "n/a"
    monkeypatch.setattr(targets, "CPU_BASELINE", {})
    assert verdict(res, CPU).status == "n/a"  # nothing to compare with: never met
    monkeypatch.setattr(targets, "CPU_BASELINE", {dataset.QUICK.sequential: 5.0})
    assert verdict(res, CPU).status == "met"
    monkeypatch.setattr(targets, "CPU_BASELINE", {dataset.QUICK.sequential: 3.0})
    assert verdict(res, CPU).status == "NOT met"
    broken = results(failed("sequential", "bucketdav", 0, "OSError: reset"))
    monkeypatch.setattr(targets, "CPU_BASELINE", {dataset.QUICK.sequential: 5.0})
    assert verdict(broken, CPU).status == "NOT met"


def test_memory_and_backend_targets_count_failed_runs_too() -> None:
    res = results(failed("memory", "bucketdav", 0, "RuntimeError: wrong bytes"),
                  ok("shared", "bucketdav", 0, backend_bytes=33 * MiB),
                  failed("shared", "bucketdav", 1, "RuntimeError: short body"))
    by_goal = {v.goal: v for v in targets.targets(res, 32 * MiB, 512)}
    assert by_goal["Memory: many concurrent readers stay under --memory-target"].status == (
        "NOT met")
    backend = by_goal["Concurrent readers of one object: backend bytes ≤ 1.1× object size"]
    assert backend.status == "NOT met" and "short body" in backend.detail


def test_failures_are_shown_in_the_tables_beside_the_median() -> None:
    res = results(*sequential([200, "RuntimeError: a | b", "RuntimeError: c"], [390] * 3))
    workloads = [w for w in build(dataset.QUICK) if w.key == "sequential"]
    table = report.main_table(res, workloads, ["limit", "bucketdav"])
    assert "| 200 (2 of 3 runs failed) |" in table
    verdicts = report.verdict_table(targets.targets(res, 32 * MiB, 512))
    assert "RuntimeError: a \\| b" in verdicts  # a pipe in the error does not split the cell
    assert "bucketdav, sequential: failed: RuntimeError: c" in report.notes(res)


def test_the_cpu_table_shows_seconds_per_gib_and_per_thousand_requests() -> None:
    res = results(ok("sequential", "bucketdav", 0, mb_s=300, cpu_s_per_gib=3.25,
                     cpu_s_per_1k_req=0.2),
                  failed("sequential", "rclone", 0, "RuntimeError: x"))
    workloads = [w for w in build(dataset.QUICK) if w.key == "sequential"]
    table = report.cpu_table(res, workloads, ["limit", "bucketdav", "rclone"])
    assert "| 3.25 s/GiB · 0.20 s/1k req | failed |" in table


def test_the_limit_reads_pieces_that_tile_the_span_exactly() -> None:
    for offset, length in ((0, 64 * MiB), (16 * MiB, 16 * MiB + 5), (3, 7)):
        found = reads.pieces(offset, length, reads.LIMIT_STREAMS)
        assert found[0][0] == offset
        assert sum(n for _, n in found) == length
        assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(found))
    assert len(reads.pieces(0, 64 * MiB, 8)) == 8


def test_every_region_run_reads_a_new_region_inside_the_object() -> None:
    for sizes in (dataset.QUICK, dataset.FULL):
        offsets = [dataset.region_offset(sizes, r) for r in range(3)]
        assert len(set(offsets)) == 3 and 0 not in offsets
        assert all(o + sizes.region <= sizes.sequential for o in offsets)


def test_the_memory_figures_the_readme_quotes_are_printed_from_measurements() -> None:
    res = results(ok("footprint", "bucketdav", 0, rest_rss_mib=71.2, peak_rss_mib=88.6),
                  ok("sequential", "bucketdav", 0, mb_s=200, peak_rss_mib=134.9))
    assert report.memory_figures(res, 512) == [
        "at rest (started, idle for a second), RSS: 71 MiB",
        "one reader of 64 MiB at --memory-target 48, peak RSS: 89 MiB",
        "one reader of 64 MiB at --memory-target 512, peak RSS: 135 MiB",
    ]
    workloads = build(dataset.QUICK)
    verdicts = targets.targets(res, 32 * MiB, 512)
    printed = report.console(res, workloads, ["bucketdav"], verdicts)
    assert "at rest (started, idle for a second), RSS: 71 MiB" in printed
    failed_footprint = results(failed("footprint", "bucketdav", 0, "RuntimeError: wrong bytes"))
    assert report.memory_figures(failed_footprint, 512) == [
        "at rest (started, idle for a second), RSS: failed",
        "one reader of 64 MiB at --memory-target 48, peak RSS: failed",
    ]

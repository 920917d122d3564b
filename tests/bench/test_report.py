"""The benchmark's verdicts cannot flatter: a target is met only when every run it compares
succeeded and the medians meet it; a failure is NOT met and is shown, never hidden behind the
median of the runs that happened to work. Judged on hand-made results: no rig is started.
"""

from __future__ import annotations

from dataclasses import asdict

from bench import dataset, report
from bench.runner import Measurement, Results
from bench.workloads import build

MiB = 1024 * 1024
SEQUENTIAL = "Sequential read: bucketdav ≥ 4× rclone serve webdav"
VS_DIRECT = "Sequential read: bucketdav ≥ 4× a single direct connection"


def results(*measurements: Measurement, skipped: dict[str, str] | None = None) -> Results:
    options = {"sizes": asdict(dataset.QUICK), "memory_target_mib": 512, "runs": 3}
    return Results(options, {}, list(measurements), skipped or {})


def ok(workload: str, contender: str, run: int, **metrics: float) -> Measurement:
    return Measurement(workload, contender, run, metrics=dict(metrics))


def failed(workload: str, contender: str, run: int, error: str) -> Measurement:
    return Measurement(workload, contender, run, error=error + "\nTraceback tail")


def sequential(bucketdav: list[float | str], rclone: list[float | str]) -> list[Measurement]:
    """Runs of the sequential workload; a string is a failed run with that error."""
    found = []
    for name, runs in (("bucketdav", bucketdav), ("rclone", rclone)):
        for i, run in enumerate(runs):
            found.append(failed("sequential", name, i, run) if isinstance(run, str)
                         else ok("sequential", name, i, mb_s=run))
    return found


def verdict(res: Results, goal: str) -> report.Verdict:
    (found,) = [v for v in report.targets(res, 32 * MiB, 512) if v.goal == goal]
    return found


def test_a_target_is_met_when_every_run_succeeded_and_the_median_meets_it() -> None:
    res = results(*sequential([190, 200, 210], [40, 50, 45]))
    found = verdict(res, SEQUENTIAL)
    assert found.status == "met"
    assert found.detail == "200.0 vs 45.0 MB/s = 4.44×"


def test_a_median_below_the_target_is_not_met() -> None:
    res = results(*sequential([150, 150, 170], [40, 40, 40]))  # 3.75×
    assert verdict(res, SEQUENTIAL).status == "NOT met"


def test_two_failed_runs_of_three_are_not_met_though_the_good_run_would_meet_it() -> None:
    res = results(*sequential([500, "RuntimeError: wrong bytes at offset 7", "TimeoutError: "],
                              [40, 40, 40]))
    found = verdict(res, SEQUENTIAL)
    assert found.status == "NOT met"
    assert "bucketdav run 2 failed: RuntimeError: wrong bytes at offset 7" in found.detail
    assert "bucketdav run 3 failed: TimeoutError:" in found.detail


def test_bucketdav_failing_every_run_is_not_met_rather_than_na() -> None:
    res = results(*sequential(["OSError: refused"] * 3, [40, 40, 40]))
    for goal in (SEQUENTIAL, VS_DIRECT):
        found = verdict(res, goal)
        assert found.status == "NOT met"
        assert "bucketdav run 1 failed: OSError: refused" in found.detail


def test_a_failed_run_of_the_contender_compared_with_is_not_met() -> None:
    res = results(*sequential([200, 200, 200], [40, "RuntimeError: rclone died", 40]))
    found = verdict(res, SEQUENTIAL)
    assert found.status == "NOT met"
    assert "rclone run 2 failed: RuntimeError: rclone died" in found.detail


def test_bucketdav_not_offering_the_workload_is_not_met() -> None:
    res = results(Measurement("sequential", "bucketdav", 0, unavailable="GET answered 405"),
                  ok("sequential", "rclone", 0, mb_s=40))
    found = verdict(res, SEQUENTIAL)
    assert found.status == "NOT met"
    assert "GET answered 405" in found.detail


def test_what_this_run_did_not_measure_is_na_not_met() -> None:
    skipped = results(*sequential([200, 200, 200], []), skipped={"rclone": "not installed"})
    assert verdict(skipped, SEQUENTIAL).status == "n/a"
    assert "rclone not run: not installed" in verdict(skipped, SEQUENTIAL).detail
    assert verdict(skipped, VS_DIRECT).status == "n/a"  # no direct runs either
    nothing = results()
    assert {v.status for v in report.targets(nothing, 32 * MiB, 512)} == {"n/a"}


def test_memory_and_backend_targets_count_failed_runs_too() -> None:
    res = results(failed("memory", "bucketdav", 0, "RuntimeError: wrong bytes"),
                  ok("shared", "bucketdav", 0, backend_bytes=33 * MiB),
                  failed("shared", "bucketdav", 1, "RuntimeError: short body"))
    by_goal = {v.goal: v for v in report.targets(res, 32 * MiB, 512)}
    assert by_goal["Memory: many concurrent readers stay under --memory-target"].status == (
        "NOT met")
    backend = by_goal["Concurrent readers of one object: backend bytes ≤ 1.1× object size"]
    assert backend.status == "NOT met" and "short body" in backend.detail


def test_failures_are_shown_in_the_tables_beside_the_median() -> None:
    res = results(*sequential([200, "RuntimeError: a | b", "RuntimeError: c"], [40, 40, 40]))
    workloads = [w for w in build(dataset.QUICK) if w.key == "sequential"]
    table = report.main_table(res, workloads, ["bucketdav", "rclone"])
    assert "| 200 (2 of 3 runs failed) |" in table
    verdicts = report.verdict_table(report.targets(res, 32 * MiB, 512))
    assert "RuntimeError: a \\| b" in verdicts  # a pipe in the error does not split the cell
    assert "bucketdav, sequential: failed: RuntimeError: c" in report.notes(res)


def test_the_memory_figures_the_readme_quotes_are_printed_from_measurements() -> None:
    res = results(ok("footprint", "bucketdav", 0, rest_rss_mib=71.2, peak_rss_mib=88.6),
                  ok("sequential", "bucketdav", 0, mb_s=200, peak_rss_mib=134.9))
    assert report.memory_figures(res, 512) == [
        "at rest (started, idle for a second), RSS: 71 MiB",
        "one reader of 64 MiB at --memory-target 48, peak RSS: 89 MiB",
        "one reader of 64 MiB at --memory-target 512, peak RSS: 135 MiB",
    ]
    workloads = build(dataset.QUICK)
    verdicts = report.targets(res, 32 * MiB, 512)
    printed = report.console(res, workloads, ["bucketdav"], verdicts)
    assert "at rest (started, idle for a second), RSS: 71 MiB" in printed
    failed_footprint = results(failed("footprint", "bucketdav", 0, "RuntimeError: wrong bytes"))
    assert report.memory_figures(failed_footprint, 512) == [
        "at rest (started, idle for a second), RSS: failed",
        "one reader of 64 MiB at --memory-target 48, peak RSS: failed",
    ]

"""Medians of the measured runs, and the failures that travel with them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.runner import Measurement, Results


@dataclass(frozen=True, slots=True)
class Cell:
    """The median of one metric of one contender on one workload, or why there is none.

    A median hides failed runs, so the failures travel with it and are shown beside it."""

    value: float | None
    runs: int  # successful measurements behind the median
    why: str = ""  # "n/a", "failed", "not run"
    failed: int = 0  # runs that failed
    total: int = 0  # runs measured (successful, failed and n/a)

    def text(self, digits: int = 1) -> str:
        if self.value is None:
            return self.why or "—"
        shown = _fmt(self.value, digits)
        if self.failed:
            shown += f" ({self.failed} of {self.total} runs failed)"
        return shown


def _fmt(value: float, digits: int = 1) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10 or digits == 0:
        return f"{value:.{digits}f}"
    return f"{value:.{max(digits, 2)}f}"


def _runs(results: Results, workload: str, contender: str) -> list[Measurement]:
    return [m for m in results.measurements if m.workload == workload and m.contender == contender]


def cell(results: Results, workload: str, contender: str, metric: str) -> Cell:
    ms = _runs(results, workload, contender)
    if not ms:
        return Cell(None, 0, "not run")
    failed = sum(1 for m in ms if m.error is not None)
    good = [m.metrics[metric] for m in ms if m.error is None and m.unavailable is None
            and metric in m.metrics]
    if not good:
        why = "failed" if failed else ("n/a" if any(m.unavailable for m in ms) else "—")
        return Cell(None, 0, why, failed, len(ms))
    return Cell(statistics.median(good), len(good), "", failed, len(ms))


def spread_of(results: Results, workload: str, contender: str, metric: str) -> tuple[float, float]:
    """Smallest and largest value over the successful runs (0, 0 when there are none)."""
    values = [m.metrics[metric] for m in results.measurements
              if m.workload == workload and m.contender == contender and m.error is None
              and m.unavailable is None and metric in m.metrics]
    return (min(values), max(values)) if values else (0.0, 0.0)


def ratio(better: Cell, other: Cell, higher_is_better: bool) -> str:
    """How many times better the first is (above 1: better), as text."""
    if better.value is None or other.value is None or not better.value or not other.value:
        return "—"
    times = better.value / other.value if higher_is_better else other.value / better.value
    return f"{times:.2f}×"

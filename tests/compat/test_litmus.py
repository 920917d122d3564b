"""litmus 0.13, the WebDAV compliance suite, against bucketdav over moto.

The expected result of every litmus test in each mode is committed in
``tests/compat/litmus/<mode>.txt``, each non-pass with its reason. Every result is
enforced, failures included: a test expected to pass that does not is a regression, and a
test expected to fail that passes means a refusal the semantics require is gone (a DELETE
that starts succeeding in default mode). Default-mode failures are exactly the ones
docs/SEMANTICS.md lists, which a test here checks against the page.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.compat.conftest import PERMISSIVE, StartGateway, require_tool

EXPECTED = Path(__file__).parent / "litmus"
SEMANTICS = Path(__file__).parents[2] / "docs" / "SEMANTICS.md"
_LINE = re.compile(r"^\s*(\d+)\.\s+(\S+?)\.*\s+.*?\b(pass|FAIL|SKIPPED|WARNING)\b")
_SUITE = re.compile(r"^-> running `(\w+)':")

MODES = {"default": (), "permissive": PERMISSIVE}


def parse_litmus(output: str) -> dict[str, str]:
    """``{"suite/NN.name": "pass" | "FAIL" | "SKIPPED" | "WARNING"}`` from litmus output."""
    results: dict[str, str] = {}
    suite = "?"
    for line in output.splitlines():
        m = _SUITE.match(line)
        if m:
            suite = m.group(1)
            continue
        m = _LINE.match(line)
        if m:
            index, name, result = m.groups()
            results[f"{suite}/{int(index):02d}.{name}"] = result
    return results


@dataclass(frozen=True)
class Expected:
    result: str  # pass | FAIL | SKIPPED | WARNING
    why: str  # the reason for a non-pass, after the line's '#'


def read_expected(mode: str) -> dict[str, Expected]:
    expected: dict[str, Expected] = {}
    for line in (EXPECTED / f"{mode}.txt").read_text("utf-8").splitlines():
        entry, _, why = line.partition("#")
        if entry.strip():
            test, result = entry.split()
            expected[test] = Expected(result, why.strip())
    return expected


def semantics_default_failures() -> dict[str, str]:
    """The table of default-mode litmus failures in docs/SEMANTICS.md, as
    ``{"suite/name": why}`` or, where the table names indices, ``{"suite/NN.name": why}``."""
    text = SEMANTICS.read_text("utf-8")
    table = text[text.index("In default mode, these fail by design") :]
    rows = [line for line in table.split("\n\n")[1].splitlines() if line.startswith("| ")]
    failures: dict[str, str] = {}
    for row in rows[1:]:  # the first row is the header
        suite, tests, why = (cell.strip() for cell in row.strip("|").split("|"))
        for name, indices in re.findall(r"`(\w+)`(?:\s*\(([\d, ]+)\))?", tests):
            if indices:
                for index in indices.split(","):
                    failures[f"{suite}/{int(index):02d}.{name}"] = why
            else:
                failures[f"{suite}/{name}"] = why
    return failures


SUITES = ("basic", "copymove", "props", "locks", "http")


def run_litmus(url: str, workdir: Path) -> str:
    """Run each suite in a collection of its own (``/<suite>/litmus/``).

    litmus starts every suite by deleting and re-creating ``<url>/litmus/``; in default
    mode the delete is refused, so suites sharing one URL would all fail at "begin"
    because of the one before. Separate collections keep each suite's result its own.
    """
    litmus = require_tool("litmus")
    output = []
    for suite in SUITES:
        base = f"{url}/{suite}/"
        made = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "MKCOL", base],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert made.stdout == "201", f"MKCOL {base}: {made.stdout}"
        proc = subprocess.run(
            [litmus, "-k", base],
            capture_output=True,
            timeout=600,
            env={**os.environ, "TESTS": suite},
            cwd=workdir,  # litmus writes debug.log and child.log where it runs
            check=False,
        )
        output.append((proc.stdout + proc.stderr).decode("utf-8", "replace"))
    return "".join(output)


def test_parser_reads_litmus_lines() -> None:
    sample = (
        "-> running `basic':\n"
        " 0. init..................  0. init.................. pass\n"
        "10. mkcol................. 10. mkcol................. FAIL (MKCOL on x: 403)\n"
        "-> running `props':\n"
        " 7. propget...............  7. propget............... SKIPPED\n"
    )
    assert parse_litmus(sample) == {
        "basic/00.init": "pass",
        "basic/10.mkcol": "FAIL",
        "props/07.propget": "SKIPPED",
    }


def test_every_expected_non_pass_says_why() -> None:
    for mode in MODES:
        for test, expected in read_expected(mode).items():
            assert expected.result in ("pass", "FAIL", "SKIPPED", "WARNING"), (mode, test)
            assert (expected.result == "pass") == (not expected.why), (mode, test)


def covers(documented: str, test: str) -> bool:
    """``suite/NN.name`` names one test; ``suite/name`` every test of that name in the suite."""
    suite, _, rest = documented.partition("/")
    if "." in rest:
        return test == documented
    return test.partition("/")[0] == suite and test.partition(".")[2] == rest


def test_default_mode_fails_exactly_the_tests_semantics_lists() -> None:
    documented = semantics_default_failures()
    expected = read_expected("default")
    failing = [test for test, e in expected.items() if e.result == "FAIL"]
    undocumented = [t for t in failing if not any(covers(d, t) for d in documented)]
    assert not undocumented, f"SEMANTICS.md does not list these default failures: {undocumented}"
    not_failing = [d for d in documented if not any(covers(d, t) for t in failing)]
    assert not not_failing, f"SEMANTICS.md lists failures default.txt lacks: {not_failing}"
    passes = [sum(e.result == "pass" for e in read_expected(mode).values())
              for mode in ("default", "permissive")]
    counted = re.search(r"(\d+) in all, against (\d+) in permissive mode",
                        SEMANTICS.read_text("utf-8"))
    assert counted is not None
    assert passes == [int(n) for n in counted.groups()]


def differences(results: dict[str, str], expected: dict[str, Expected]) -> list[str]:
    """One line per test whose result is not the expected one, with the expected reason."""
    lines = []
    for test in sorted(expected.keys() | results.keys()):
        want = expected.get(test)
        got = results.get(test, "missing")
        if want is None:
            lines.append(f"{test}: {got}, not in the expected file")
        elif got != want.result:
            because = f" ({want.why})" if want.why else ""
            lines.append(f"{test}: expected {want.result}{because}, got {got}")
    return lines


@pytest.mark.compat
@pytest.mark.parametrize("mode", sorted(MODES))
def test_litmus_results_are_exactly_the_expected_ones(
    moto_gateway: StartGateway, mode: str, tmp_path: Path
) -> None:
    gateway = moto_gateway(*MODES[mode])
    output = run_litmus(gateway.url, tmp_path)
    results = parse_litmus(output)
    expected = read_expected(mode)
    summary = {r: sum(1 for v in results.values() if v == r) for r in set(results.values())}
    print(f"litmus {mode}: {summary}")
    assert results, f"litmus printed no results:\n{output}\n{gateway.output()}"
    regressions = [t for t, e in expected.items()
                   if e.result == "pass" and results.get(t) != "pass"]
    assert not regressions, f"litmus regressions in {mode} mode: {regressions}\n{output}"
    changed = differences(results, expected)
    assert not changed, (
        f"litmus in {mode} mode differs from litmus/{mode}.txt:\n" + "\n".join(changed)
        + f"\n{output}"
    )

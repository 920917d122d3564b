"""litmus 0.13, the WebDAV compliance suite, against bucketdav over moto.

The expected result of every litmus test in each mode is committed in
``tests/compat/litmus/<mode>.txt``. A test expected to pass that does not is a
regression and fails this test; a test that newly passes is reported so the expected
file can be tightened. Default-mode failures are the ones the semantics require; each
is explained in docs/SEMANTICS.md.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.compat.conftest import PERMISSIVE, StartGateway, require_tool

EXPECTED = Path(__file__).parent / "litmus"
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


def read_expected(mode: str) -> dict[str, str]:
    expected: dict[str, str] = {}
    for line in (EXPECTED / f"{mode}.txt").read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            test, result = line.split()
            expected[test] = result
    return expected


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


@pytest.mark.compat
@pytest.mark.parametrize("mode", sorted(MODES))
def test_litmus_results_do_not_regress(
    moto_gateway: StartGateway, mode: str, tmp_path: Path
) -> None:
    gateway = moto_gateway(*MODES[mode])
    output = run_litmus(gateway.url, tmp_path)
    results = parse_litmus(output)
    expected = read_expected(mode)
    regressions = [t for t, r in expected.items() if r == "pass" and results.get(t) != "pass"]
    improved = [t for t, r in results.items() if r == "pass" and expected.get(t) != "pass"]
    summary = {r: sum(1 for v in results.values() if v == r) for r in set(results.values())}
    print(f"litmus {mode}: {summary}; newly passing: {improved}")
    assert results, f"litmus printed no results:\n{output}\n{gateway.output()}"
    assert not regressions, f"litmus regressions in {mode} mode: {regressions}\n{output}"

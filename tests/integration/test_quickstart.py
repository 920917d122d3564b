"""The README's Quick start: ``scripts/serve`` with no argument serves ./data, seeded with a
welcome file, and curl lists and reads it."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120.0  # seconds for scripts/serve to say where it serves (pip may run first)


def curl(*args: str) -> bytes:
    return subprocess.run(
        ["curl", "-s", "--fail", *args], capture_output=True, timeout=60, check=True
    ).stdout


def first_match(
    proc: subprocess.Popen[str], pattern: str, timeout: float
) -> tuple[re.Match[str] | None, list[str]]:
    """The first output line matching ``pattern`` within ``timeout`` seconds (None if the
    process ends or stays silent), and the lines read so far. A thread reads the pipe to
    its end (and closes it), so a process that hangs is a failure here, never a hang of
    the test."""
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump(stream: IO[str]) -> None:
        with stream:
            for line in stream:
                lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, args=(proc.stdout,), daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if m := re.search(pattern, line):
            return m, seen
    return None, seen


def test_scripts_serve_with_no_argument_serves_a_seeded_data_folder(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "serve"), "--port", "0", "--no-admin"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    try:
        # pip may speak first, on a machine without .venv
        m, seen = first_match(
            proc, r"serving (\S+) at (http://127\.0\.0\.1:\d+)/", START_TIMEOUT
        )
        assert m is not None, (
            f"scripts/serve did not say where it serves within {START_TIMEOUT:.0f} s:\n"
            + "".join(seen)
        )
        assert Path(m.group(1)) == tmp_path / "data"
        url = m.group(2)
        listing = json.loads(curl("-H", "Accept: application/json", url + "/"))
        assert [e["name"] for e in listing["entries"]] == ["welcome.txt"]
        assert curl(url + "/welcome.txt").startswith(b"Hello from bucketdav.")
        assert curl("-r", "0-4", url + "/welcome.txt") == b"Hello"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert proc.returncode == 0

"""The README's Quick start: ``scripts/serve`` with no argument serves ./data, seeded with a
welcome file, and curl lists and reads it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def curl(*args: str) -> bytes:
    return subprocess.run(
        ["curl", "-s", "--fail", *args], capture_output=True, timeout=60, check=True
    ).stdout


def test_scripts_serve_with_no_argument_serves_a_seeded_data_folder(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "serve"), "--port", "0", "--no-admin"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    try:
        url = None
        for line in proc.stdout:  # pip may speak first, on a machine without .venv
            m = re.search(r"serving (\S+) at (http://127\.0\.0\.1:\d+)/", line)
            if m:
                assert Path(m.group(1)) == tmp_path / "data"
                url = m.group(2)
                break
        assert url is not None, "scripts/serve never said where it serves"
        listing = json.loads(curl("-H", "Accept: application/json", url + "/"))
        assert [e["name"] for e in listing["entries"]] == ["welcome.txt"]
        assert curl(url + "/welcome.txt").startswith(b"Hello from bucketdav.")
        assert curl("-r", "0-4", url + "/welcome.txt") == b"Hello"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == 0

"""The README's rclone command works as written (issue 9, item 12): it is taken from the
README's client table, pointed at a real ``bucketdav serve``, and run with the real rclone."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.compat.conftest import require_tool
from tests.gatewayproc import running_gateway

README = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")


def readme_command() -> str:
    row = next(line for line in README.splitlines() if line.startswith("| rclone |"))
    found = re.search(r"`(rclone [^`]+)`", row)
    assert found is not None, row
    return found.group(1)


@pytest.mark.compat
def test_the_readme_rclone_command_lists_the_share(tmp_path: Path) -> None:
    require_tool("rclone")
    (tmp_path / "hello.txt").write_text("hi")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("a")
    with running_gateway(str(tmp_path)) as server:
        command = readme_command().replace("http://host:8080/", server.url + "/")
        assert server.url in command
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        result = subprocess.run(
            [*shlex.split(command), "--config", "/dev/null"],
            capture_output=True, text=True, timeout=120, env=env,
        )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["docs/", "hello.txt"]

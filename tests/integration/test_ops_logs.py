"""Logs of a real ``bucketdav serve``: one structured line per request, in JSON or logfmt,
and never a password or an Authorization header, whatever the client sends."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.auth.support import bcrypt_hash
from tests.gatewayproc import bucketdav

PASSWORD = "Tr0ub4dor-and-3-horses"
WRONG = "correct-horse-battery-staple"
FIELDS = {"method", "path", "status", "bytes_in", "bytes_out", "duration", "user", "client",
          "agent"}


def call(url: str, method: str = "GET", password: str | None = None, data: bytes | None = None,
         ) -> int:
    request = urllib.request.Request(url, method=method, data=data)
    request.add_header("User-Agent", "ops-test/1.0")
    if password is not None:
        token = base64.b64encode(f"alice:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def exercise(url: str) -> None:
    assert call(url + "/f.txt") == 401
    assert call(url + "/f.txt", password=WRONG) == 401
    assert call(url + "/f.txt", password=PASSWORD) == 200
    assert call(url + f"/f.txt?password={PASSWORD}", password=PASSWORD) == 200
    assert call(url + "/new.txt", "PUT", PASSWORD, b"data") == 201


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.txt").write_text("content")
    config = tmp_path / "c.toml"
    config.write_text(f'[[user]]\nname = "alice"\npassword_hash = "{bcrypt_hash(PASSWORD)}"\n')
    return data, config


def secrets_absent(output: str) -> None:
    for secret in (PASSWORD, WRONG):
        assert secret not in output
        assert base64.b64encode(f"alice:{secret}".encode()).decode() not in output
    assert "Authorization" not in output and "Basic " not in output


@pytest.mark.parametrize("level", ["info", "debug"])
def test_json_lines_with_every_field_and_no_secret(setup: tuple[Path, Path], level: str
                                                  ) -> None:
    data, config = setup
    with bucketdav(str(data), "--config", str(config), "--log-format", "json",
                   "--log-level", level) as server:
        exercise(server.url)
        assert server.stop() == 0
    output = server.output()
    secrets_absent(output)
    access = [json.loads(line) for line in output.splitlines()
              if line.startswith("{") and '"bucketdav.access"' in line]
    assert len(access) == 5
    assert all(set(entry) >= FIELDS for entry in access)
    assert [e["status"] for e in access] == [401, 401, 200, 200, 201]
    assert [e["user"] for e in access] == ["-", "-", "alice", "alice", "alice"]
    assert access[3]["path"] == "/f.txt"  # the query string is never logged
    assert access[4]["method"] == "PUT" and access[4]["bytes_in"] == 4
    assert access[2]["bytes_out"] > len("content")
    assert all(e["client"] == "127.0.0.1" and e["agent"] == "ops-test/1.0" for e in access)


def test_text_lines_are_logfmt_and_hold_no_secret(setup: tuple[Path, Path]) -> None:
    data, config = setup
    with bucketdav(str(data), "--config", str(config)) as server:
        exercise(server.url)
        assert server.stop() == 0
    output = server.output()
    secrets_absent(output)
    lines = [line for line in output.splitlines() if "bucketdav.access" in line]
    assert len(lines) == 5
    assert "method=PUT path=/new.txt status=201 bytes_in=4" in lines[4]
    assert "user=alice client=127.0.0.1 agent=ops-test/1.0" in lines[4]


def test_no_access_log_when_switched_off(setup: tuple[Path, Path]) -> None:
    data, config = setup
    with bucketdav(str(data), "--config", str(config), "--no-access-log") as server:
        exercise(server.url)
        assert server.stop() == 0
    assert "bucketdav.access" not in server.output()

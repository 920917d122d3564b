"""``bucketdav serve --state URL`` in a real process: it opens the state store at startup,
and one that cannot be reached or named stops it with one clear line (exit status 2)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from tests.gatewayproc import bucketdav, run_bucketdav
from tests.servers import RedisServer, free_port


def test_an_unreachable_state_store_stops_startup_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    done = run_bucketdav(str(tmp_path), "--port", "0", "--no-admin",
                         "--state", f"redis://:hunter2@127.0.0.1:{port}/0")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"cannot reach the state store redis://127.0.0.1:{port}/0" in lines[0]
    assert "hunter2" not in done.stderr + done.stdout
    assert "serving" not in done.stdout


@pytest.mark.parametrize("url", ["memcached://host:1/0", "redis://host/0"])
def test_a_malformed_state_url_stops_startup_with_one_line(tmp_path: Path, url: str) -> None:
    done = run_bucketdav(str(tmp_path), "--port", "0", "--no-admin", "--state", url)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--state" in lines[0], done.stderr


def test_the_gateway_serves_with_a_redis_state_store(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    (tmp_path / "hello.txt").write_bytes(b"hi")
    with bucketdav(str(tmp_path), "--no-admin", env={"BUCKETDAV_STATE": redis_server.url}
                   ) as process:
        with urllib.request.urlopen(process.url + "/hello.txt", timeout=10) as reply:
            assert reply.read() == b"hi"
        assert process.stop() == 0

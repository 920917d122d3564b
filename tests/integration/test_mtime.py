"""Timestamps that survive a copy (issue 12, point 5), end to end: the real rclone (webdav
backend, vendor owncloud, which sends ``X-OC-Mtime``) copies a folder into a real
``bucketdav serve`` over a local folder and over moto; ``rclone check`` finds no
difference, and a second ``rclone copy`` transfers nothing. The times are where rclone
keeps them: the file's mtime on a local folder, ``x-amz-meta-mtime`` on S3; GET's
Last-Modified and PROPFIND Depth 1 show them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from tests.gatewayproc import GatewayProcess, running_gateway
from tests.integration.trees import write_tree
from tests.servers import client, create_bucket, run_redis

WHEN = 1_588_748_889.25  # 2020-05-06 07:08:09.25 UTC; rclone sends whole seconds
MANY = 20  # more small files, for the restart test's count of HEADs
FILES = {"a.txt": b"hello\n", "sub/b.txt": b"world\n", "sub/big.bin": b"z" * (6 << 20)}


def rclone(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("rclone")
    assert binary is not None, "rclone is not installed"
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # rclone 1.60
    return subprocess.run([binary, "--config", "/dev/null", *args], capture_output=True,
                          text=True, timeout=180, env=env, check=False)


def remote(process: GatewayProcess) -> str:
    return f":webdav,url='{process.url}/',vendor=owncloud:dst"


def final_stats(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The last stats record of a ``--use-json-log -v`` run."""
    stats = [json.loads(line)["stats"] for line in result.stderr.splitlines()
             if line.startswith("{") and '"stats"' in line]
    assert stats, result.stderr
    found: dict[str, Any] = stats[-1]
    return found


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "src", FILES, WHEN)


@pytest.fixture(params=["local", "moto"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path
            ) -> Iterator[tuple[GatewayProcess, str, Any]]:
    """(process, kind, where the objects are: a folder or (s3 client, bucket))."""
    if request.param == "local":
        folder = tmp_path / "store"
        folder.mkdir()
        with running_gateway(str(folder)) as process:
            yield process, "local", folder
        return
    endpoint: str = request.getfixturevalue("moto_server")
    bucket = create_bucket(endpoint)
    with running_gateway(f"s3://{bucket}", "--endpoint-url", endpoint, "--force-path-style",
                         "--write-part-size", "5") as process:
        yield process, "moto", (client(endpoint), bucket)


def stored_time(kind: str, where: Any, key: str) -> float:
    if kind == "local":
        return Path(where, "dst", key).stat().st_mtime
    s3, bucket = where
    return float(s3.head_object(Bucket=bucket, Key=f"dst/{key}")["Metadata"]["mtime"])


def test_rclone_copy_keeps_times_and_a_second_copy_moves_nothing(
    gateway: tuple[GatewayProcess, str, Any], source: Path
) -> None:
    process, kind, where = gateway
    first = rclone("copy", "--use-json-log", "-v", str(source), remote(process))
    assert first.returncode == 0, first.stderr
    assert final_stats(first)["transfers"] == len(FILES)
    for key in FILES:
        assert stored_time(kind, where, key) == int(WHEN)  # rclone sends whole seconds

    check = rclone("check", str(source), remote(process))
    assert check.returncode == 0, check.stderr
    assert "0 differences found" in check.stderr

    second = rclone("copy", "--use-json-log", "-v", str(source), remote(process))
    assert second.returncode == 0, second.stderr
    stats = final_stats(second)
    assert stats["transfers"] == 0 and stats["errors"] == 0
    assert stats["checks"] == len(FILES)

    # What other clients see: GET's Last-Modified, a PROPFIND Depth 1 listing, rclone's.
    shown = format_datetime(datetime.fromtimestamp(int(WHEN), UTC), usegmt=True)
    head = subprocess.run(["curl", "-sI", f"{process.url}/dst/a.txt"], capture_output=True,
                          text=True, timeout=60, check=True).stdout
    assert f"Last-Modified: {shown}" in head
    listing = subprocess.run(
        ["curl", "-s", "-X", "PROPFIND", "-H", "Depth: 1", f"{process.url}/dst/sub/"],
        capture_output=True, text=True, timeout=60, check=True).stdout
    assert listing.count(f"<D:getlastmodified>{shown}</D:getlastmodified>") == 2
    listed = rclone("lsjson", "-R", remote(process))
    assert listed.returncode == 0, listed.stderr
    times = {item["Path"]: item["ModTime"] for item in json.loads(listed.stdout)
             if not item["IsDir"]}
    assert set(times) == set(FILES)
    assert all(value.startswith("2020-05-06T07:08:09") for value in times.values()), times


def test_with_redis_a_restarted_gateway_still_lists_the_times(
    moto_server: str, source: Path, tmp_path: Path
) -> None:
    """S3 listings carry no user metadata: a new process learns the times from the
    records in the shared state store, so a copy after a restart moves nothing either,
    and it asks the store for no HEAD per object to do so."""
    for i in range(MANY):
        path = source / "many" / f"{i:02}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"%d" % i)
        os.utime(path, (WHEN, WHEN))
    bucket = create_bucket(moto_server)
    args = (f"s3://{bucket}", "--endpoint-url", moto_server, "--force-path-style",
            "--write-part-size", "5")
    with run_redis(tmp_path) as redis:
        with running_gateway(*args, "--state", redis.url) as process:
            first = rclone("copy", "--use-json-log", "-v", str(source), remote(process))
            assert first.returncode == 0, first.stderr
            assert final_stats(first)["transfers"] == len(FILES) + MANY
        with running_gateway(*args, "--state", redis.url, "--admin-port", "0") as process:
            second = rclone("copy", "--use-json-log", "-v", str(source), remote(process))
            assert second.returncode == 0, second.stderr
            stats = final_stats(second)
            assert stats["transfers"] == 0 and stats["errors"] == 0
            assert stats["checks"] == len(FILES) + MANY
            metrics = subprocess.run(["curl", "-s", f"{process.admin}/metrics"],
                                     capture_output=True, text=True, timeout=60,
                                     check=True).stdout
            (heads,) = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                        if line.startswith("bucketdav_engine_store_heads_total ")]
            # At most a probe per folder name (is "dst" a file?), none per object.
            assert heads <= 3, metrics

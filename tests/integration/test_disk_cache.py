"""The disk cache tier in a real ``bucketdav serve --cache DIR`` process.

An object read once is read again after the gateway restarted: the second read comes from
the cache directory, so the store sends (almost) nothing, as counted by a TCP forwarder
between the gateway and s3rver rather than by the gateway's own counters. And the
directory is private to one process: a second server on it, or a directory open to other
users, is refused at startup with one line.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

from tests.gatewayproc import bucketdav, run_bucketdav, running_gateway
from tests.integration.test_workers import ESCAPE, metrics
from tests.servers import S3RVER_PROFILE, client, create_bucket
from tests.tcpcount import counting_proxy

MiB = 1024 * 1024
SIZE = 64 * MiB


def fetch(url: str) -> str:
    """sha256 of the body of a GET (curl fails on an error status or a cut body)."""
    out = subprocess.run(["curl", "-s", "--fail", url], capture_output=True, timeout=120,
                         check=True).stdout
    assert len(out) == SIZE
    return hashlib.sha256(out).hexdigest()


def test_a_read_after_a_restart_costs_the_store_under_one_percent(
    s3rver: str, tmp_path: Path
) -> None:
    bucket = create_bucket(s3rver, profile=S3RVER_PROFILE)
    data = hashlib.shake_256(b"disk cache").digest(MiB) * (SIZE // MiB)
    client(s3rver, S3RVER_PROFILE).put_object(Bucket=bucket, Key="model.bin", Body=data)
    digest = hashlib.sha256(data).hexdigest()
    cache = tmp_path / "cache"
    with counting_proxy(s3rver) as store:
        args = (f"s3://{bucket}", "--endpoint-url", store.url, "--force-path-style",
                "--profile", S3RVER_PROFILE, "--cache", str(cache),
                # Writes behind the reader may hold a quarter of the budget, and past that
                # they are dropped by design: 512 MiB lets the whole 64 MiB queue, so a busy
                # machine (a slow writer thread) cannot make this read's blocks go missing.
                "--memory-target", "512")
        with running_gateway(*args) as gateway:
            assert fetch(gateway.url + "/model.bin") == digest
            first = store.from_server
            assert gateway.stop() == 0  # a drained stop: the writes queued land first
        assert first >= SIZE
        assert stat.S_IMODE(cache.stat().st_mode) == 0o700
        with running_gateway(*args) as gateway:
            before = store.from_server
            assert fetch(gateway.url + "/model.bin") == digest
            second = store.from_server - before
        assert second < SIZE // 100, f"the second read cost {second} bytes from the store"


def test_a_second_process_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "share"
    folder.mkdir()
    cache = tmp_path / "cache"
    with running_gateway(str(folder), "--cache", str(cache)) as gateway:
        refused = run_bucketdav(str(folder), "--cache", str(cache), "--port", "0",
                                "--no-admin")
        assert refused.returncode == 2
        assert f"--cache {cache} is in use by another bucketdav process (pid {gateway.pid})" \
            in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert "Traceback" not in refused.stderr


def test_a_cache_directory_open_to_others_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "share"
    folder.mkdir()
    cache = tmp_path / "cache"
    cache.mkdir()
    os.chmod(cache, 0o755)
    refused = run_bucketdav(str(folder), "--cache", str(cache), "--port", "0", "--no-admin")
    assert refused.returncode == 2
    assert f"--cache {cache} is open to other users (mode 0755)" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_a_cache_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "share"
    folder.mkdir()
    cache, owner = theirs(tmp_path)
    refused = run_bucketdav(str(folder), "--cache", str(cache), "--port", "0", "--no-admin")
    assert refused.returncode == 2
    assert f"--cache {cache} belongs to uid {owner}" in refused.stderr


def theirs(tmp_path: Path) -> tuple[Path, int]:
    """A private directory of another user, and that user: made by root, or the root
    directory for anyone else."""
    if os.geteuid() != 0:
        return Path("/"), 0
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    os.chown(cache, 65534, 65534)
    return cache, 65534


def test_workers_each_cache_in_their_own_subdirectory_with_a_share_of_the_size(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "share"
    folder.mkdir()
    cache = tmp_path / "cache"
    with bucketdav(str(folder), "--workers", "2", "--cache", str(cache),
                   "--max-cache-size", "100M", env=ESCAPE, timeout=60) as server:
        for worker in ("worker-0", "worker-1"):
            assert stat.S_IMODE((cache / worker).stat().st_mode) == 0o700
        assert metrics(server)["bucketdav_disk_cache_limit"][()] == 100 * MiB  # 50M each
        refused = run_bucketdav(str(folder), "--cache", str(cache), "--port", "0",
                                "--no-admin")
        assert refused.returncode == 2
        assert f"--cache {cache} is in use by another bucketdav process" in refused.stderr

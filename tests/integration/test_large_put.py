"""Large uploads through a real gateway process: streamed, bounded, all or nothing.

A 2 GiB chunked PUT (no Content-Length, as Finder and ``curl -T -`` send it) lands
byte-exact on s3rver while the gateway's resident memory is sampled. A client killed
halfway through an upload leaves neither an object nor an open multipart upload (moto,
which can list multipart uploads; s3rver cannot).
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.gatewayproc import GatewayProcess, running_gateway
from tests.servers import S3RVER_PROFILE, client, create_bucket

MiB = 1024**2
GiB = 1024**3
PATTERN = hashlib.shake_256(b"bucketdav-put").digest(MiB)


class PeakRss:
    """Samples a process's resident memory every 50 ms while the block runs."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def feed(curl: subprocess.Popen[bytes], size: int, digest: Any = None) -> None:
    """Write ``size`` bytes of the pattern to curl's stdin (curl sends them chunked)."""
    assert curl.stdin is not None
    sent = 0
    while sent < size:
        piece = PATTERN[: min(MiB, size - sent)]
        curl.stdin.write(piece)
        if digest is not None:
            digest.update(piece)
        sent += len(piece)


def put_with_curl(gateway: GatewayProcess, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-T", "-",
         gateway.url + "/" + name],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )


@pytest.fixture
def s3rver_gateway(s3rver: str) -> Iterator[tuple[GatewayProcess, str, str]]:
    bucket = create_bucket(s3rver, profile=S3RVER_PROFILE)
    with running_gateway(
        f"s3://{bucket}", "--endpoint-url", s3rver, "--force-path-style",
        "--profile", S3RVER_PROFILE,
    ) as gateway:
        yield gateway, s3rver, bucket


@pytest.mark.slow
def test_a_2_gib_chunked_put_lands_byte_exact_under_200_mib(
    s3rver_gateway: tuple[GatewayProcess, str, str],
) -> None:
    gateway, endpoint, bucket = s3rver_gateway
    sent = hashlib.sha256()
    with PeakRss(gateway.pid) as rss:
        curl = put_with_curl(gateway, "two-gib.bin")
        feed(curl, 2 * GiB, sent)
        assert curl.stdin is not None
        curl.stdin.close()
        assert curl.stdout is not None
        with curl.stdout:
            status = curl.stdout.read()
        assert curl.wait(timeout=600) == 0
        assert status == b"201"
    print(f"gateway peak RSS during a 2 GiB PUT: {rss.peak / MiB:.1f} MiB")
    assert rss.peak < 200 * MiB
    body = client(endpoint, S3RVER_PROFILE).get_object(Bucket=bucket, Key="two-gib.bin")["Body"]
    stored = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: body.read(8 * MiB), b""):
        stored.update(chunk)
        size += len(chunk)
    assert size == 2 * GiB
    assert stored.hexdigest() == sent.hexdigest()


def test_a_client_killed_halfway_leaves_no_object_and_no_upload(moto_server: str) -> None:
    bucket = create_bucket(moto_server)
    s3 = client(moto_server)
    with running_gateway(f"s3://{bucket}", "--endpoint-url", moto_server) as gateway:
        curl = put_with_curl(gateway, "half.bin")
        feed(curl, 96 * MiB)  # a dozen parts: a multipart upload is open by now
        deadline = time.monotonic() + 60
        while not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"):
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.1)
        curl.send_signal(signal.SIGKILL)
        curl.wait()
        for pipe in (curl.stdin, curl.stdout):
            if pipe is not None:
                with contextlib.suppress(BrokenPipeError):  # curl is gone
                    pipe.close()
        deadline = time.monotonic() + 60
        while s3.list_multipart_uploads(Bucket=bucket).get("Uploads"):
            assert time.monotonic() < deadline, "the multipart upload was never aborted"
            time.sleep(0.1)
        listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        assert listed == []
        output = gateway.output()
        assert "Traceback" not in output
        # One access-log line says what happened (OPERATIONS.md: 499, client gone).
        cut = [line for line in output.splitlines() if "path=/half.bin" in line]
        assert len(cut) == 1 and "status=499" in cut[0] and "client gone" in cut[0], cut

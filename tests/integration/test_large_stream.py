"""A 1 GiB object streams through a real gateway process with bounded memory.

s3rver holds the object on disk and serves ranges from it, so the only large buffers in
play would be the gateway's own. The gateway's resident memory is sampled while curl
downloads the object and hashes it on the fly.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
from collections.abc import Iterator

import psutil
import pytest

from tests.gatewayproc import running_gateway
from tests.servers import S3RVER_PROFILE, client

GiB = 1024**3
MiB = 1024**2


class PatternStream:
    """A readable file of ``size`` pseudo-random bytes, generated as it is read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pos = 0
        self.digest = hashlib.sha256()
        self._block = hashlib.shake_256(b"bucketdav").digest(MiB)

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        out = bytearray()
        while len(out) < n:
            offset = (self.pos + len(out)) % MiB
            out += self._block[offset : offset + n - len(out)]
        self.pos += n
        data = bytes(out)
        self.digest.update(data)
        return data


@pytest.fixture(scope="module")
def gib_object(s3rver: str) -> Iterator[tuple[str, str, str]]:
    """``(endpoint, bucket, sha256)`` of a bucket holding ``big.bin`` of 1 GiB."""
    from tests.servers import create_bucket

    bucket = create_bucket(s3rver, profile=S3RVER_PROFILE)
    stream = PatternStream(GiB)
    client(s3rver, S3RVER_PROFILE).upload_fileobj(stream, bucket, "big.bin")
    yield s3rver, bucket, stream.digest.hexdigest()


@pytest.mark.slow
def test_one_gib_streams_byte_exact_under_100_mib_of_memory(
    gib_object: tuple[str, str, str],
) -> None:
    endpoint, bucket, digest = gib_object
    with running_gateway(
        f"s3://{bucket}", "--endpoint-url", endpoint, "--force-path-style",
        "--profile", S3RVER_PROFILE, "--memory-target", "48",
    ) as gateway:
        process = psutil.Process(gateway.pid)
        peak = process.memory_info().rss
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.05):
                peak = max(peak, process.memory_info().rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        curl = subprocess.Popen(
            ["curl", "-s", "--fail", gateway.url + "/big.bin"], stdout=subprocess.PIPE
        )
        assert curl.stdout is not None
        h = hashlib.sha256()
        received = 0
        while chunk := curl.stdout.read(4 * MiB):
            h.update(chunk)
            received += len(chunk)
        curl.stdout.close()
        assert curl.wait() == 0
        done.set()
        sampler.join()
    assert received == GiB
    assert h.hexdigest() == digest
    print(f"gateway peak RSS while streaming 1 GiB: {peak / MiB:.1f} MiB")
    assert peak < 100 * MiB

"""A PUT's announced length cannot make a real gateway buffer without bound (issue 9, 2).

A raw socket sends a PUT head announcing a huge body (``Content-Length`` or Finder's
``X-Expected-Entity-Length`` on a chunked body) to ``bucketdav serve --memory-target 64``
over moto, then streams ~300 MB while the gateway's resident memory is sampled. A length
past the store's 5 TiB object limit, or one whose smallest legal part (10,000 parts at
most) cannot fit the budget, is refused before the body; a length that fits is uploaded
in parts the budget holds, and the client going away leaves nothing in the bucket.
"""

from __future__ import annotations

import re
import select
import socket
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.gatewayproc import GatewayProcess, bucketdav
from tests.integration.test_large_put import PATTERN, PeakRss
from tests.servers import client, create_bucket

MiB = 1024**2
TARGET = 64  # --memory-target, MiB
STREAMED = 300 * MiB
RSS_CEILING = (TARGET + 100) * MiB


@pytest.fixture
def gateway(moto_server: str) -> Iterator[tuple[GatewayProcess, str]]:
    bucket = create_bucket(moto_server)
    with bucketdav(f"s3://{bucket}", "--endpoint-url", moto_server,
                   "--memory-target", str(TARGET)) as process:
        yield process, bucket


def memory_in_use(process: GatewayProcess) -> int:
    with urllib.request.urlopen(process.admin + "/metrics", timeout=10) as reply:
        text = reply.read().decode()
    found = re.search(r"^bucketdav_memory_in_use_bytes(?:\{[^}]*\})? (\S+)$", text, re.M)
    assert found, "no memory_in_use metric"
    return int(float(found.group(1)))


def connect(process: GatewayProcess, name: str, headers: dict[str, str]) -> socket.socket:
    """A connection with the PUT head of ``name`` sent."""
    url = urlsplit(process.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    head = f"PUT /{name} HTTP/1.1\r\nHost: {url.netloc}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall((head + "\r\n").encode())
    return sock


def answered(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def status_of(sock: socket.socket) -> tuple[int, str]:
    """The status and the start of the body of the gateway's reply."""
    sock.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data or len(data) < 2048:
        try:
            piece = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not piece:
            break
        data += piece
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, data.decode(errors="replace")


def stream(sock: socket.socket, size: int, *, chunked: bool, on_piece: object = None
           ) -> int:
    """Send up to ``size`` bytes of body until the gateway answers or drops the
    connection; returns how many were sent."""
    sent = 0
    while sent < size and not answered(sock):
        piece = PATTERN
        frame = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
        try:
            sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(piece)
        if callable(on_piece):
            on_piece(sent)
    return sent


def assert_bucket_empty(moto_server: str, bucket: str) -> None:
    s3 = client(moto_server)
    deadline = time.monotonic() + 30
    while s3.list_multipart_uploads(Bucket=bucket).get("Uploads"):
        assert time.monotonic() < deadline, "a multipart upload was left open"
        time.sleep(0.1)
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Length": "1000000000000000"},
        {"Transfer-Encoding": "chunked", "X-Expected-Entity-Length": "1000000000000000"},
    ],
    ids=["content-length", "chunked-x-expected"],
)
def test_a_length_past_the_stores_maximum_is_refused_and_memory_stays_bounded(
    gateway: tuple[GatewayProcess, str], moto_server: str, headers: dict[str, str],
) -> None:
    process, bucket = gateway
    with PeakRss(process.pid) as rss:
        sock = connect(process, "huge.bin", headers)
        with sock:
            sent = stream(sock, STREAMED, chunked="Transfer-Encoding" in headers)
            status, reply = status_of(sock)
    print(f"sent {sent / MiB:.0f} MiB; gateway peak RSS {rss.peak / MiB:.1f} MiB")
    assert status == 413, reply
    assert "maximum object size" in reply
    assert rss.peak < RSS_CEILING
    assert memory_in_use(process) == 0
    assert_bucket_empty(moto_server, bucket)


def test_a_length_whose_smallest_part_cannot_fit_the_budget_is_refused_before_its_body(
    gateway: tuple[GatewayProcess, str], moto_server: str,
) -> None:
    process, bucket = gateway
    # 1 TB needs parts of at least 100 MB (10,000 parts at most): more than 64 MiB.
    sock = connect(process, "tera.bin", {"Content-Length": str(10**12),
                                         "Expect": "100-continue"})
    with sock:
        status, reply = status_of(sock)
    assert status == 413, reply
    assert "100 Continue" not in reply
    assert "--memory-target" in reply
    assert_bucket_empty(moto_server, bucket)


def test_a_large_announced_upload_is_held_to_the_budget_and_leaves_nothing_when_cut(
    gateway: tuple[GatewayProcess, str], moto_server: str,
) -> None:
    """200 GB needs parts of 20 MB: they fit the budget, so the upload starts; the client
    sends 300 MB and goes away."""
    process, bucket = gateway
    in_use: list[int] = []

    def sample(sent: int) -> None:
        if sent % (50 * MiB) == 0:
            in_use.append(memory_in_use(process))

    with PeakRss(process.pid) as rss:
        sock = connect(process, "cut.bin", {"Content-Length": str(200 * 10**9)})
        with sock:
            sent = stream(sock, STREAMED, chunked=False, on_piece=sample)
            assert sent == STREAMED, status_of(sock)
            s3 = client(moto_server)
            assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    print(f"gateway peak RSS {rss.peak / MiB:.1f} MiB; memory in use {in_use}")
    assert rss.peak < RSS_CEILING
    assert max(in_use) <= TARGET * MiB
    assert_bucket_empty(moto_server, bucket)
    deadline = time.monotonic() + 30
    while memory_in_use(process):
        assert time.monotonic() < deadline, "the upload's memory was never released"
        time.sleep(0.1)

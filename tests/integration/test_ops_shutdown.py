"""Graceful shutdown of a real ``bucketdav serve`` over a real S3 API (moto).

SIGTERM while a chunked upload is in flight: an upload that completes within the grace
period is committed; one that does not is aborted (no object, no open multipart upload);
either way the process exits 0.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from tests.apps import parse_reply
from tests.gatewayproc import Process, bucketdav
from tests.servers import REGION, client

MiB = 1024 * 1024


def serve_bucket(endpoint: str, bucket: str, grace: str) -> Any:
    return bucketdav(
        f"s3://{bucket}", "--endpoint-url", endpoint, "--region", REGION, "--force-path-style",
        "--write-part-size", "5", "--shutdown-grace", grace, "--no-admin",
    )


def start_chunked_put(server: Process, path: str) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    return sock


def send_chunk(sock: socket.socket, data: bytes) -> None:
    sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def wait_for_multipart(s3: Any, bucket: str) -> None:
    """Until the gateway has started a multipart upload (its first part is on its way)."""
    deadline = time.monotonic() + 30
    while not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"):
        assert time.monotonic() < deadline, "the upload never became a multipart upload"
        time.sleep(0.05)


def read_reply(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_an_upload_that_cannot_finish_is_aborted_and_the_process_exits_0(
    moto_bucket: tuple[str, str],
) -> None:
    endpoint, bucket = moto_bucket
    s3 = client(endpoint)
    with serve_bucket(endpoint, bucket, "1") as server:
        sock = start_chunked_put(server, "/never-finished.bin")
        for _ in range(6):
            send_chunk(sock, b"x" * MiB)
        wait_for_multipart(s3, bucket)
        assert server.stop() == 0  # the body never ends: cancelled after the grace period
        sock.close()
        assert "cancelling 1 request(s)" in server.output()
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_an_upload_finishing_within_the_grace_period_is_committed(
    moto_bucket: tuple[str, str],
) -> None:
    endpoint, bucket = moto_bucket
    s3 = client(endpoint)
    with serve_bucket(endpoint, bucket, "20") as server:
        sock = start_chunked_put(server, "/finished.bin")
        for _ in range(6):
            send_chunk(sock, b"y" * MiB)
        wait_for_multipart(s3, bucket)
        server.proc.send_signal(15)
        deadline = time.monotonic() + 30
        while "shutting down" not in server.output():  # the gateway is draining now
            assert time.monotonic() < deadline
            time.sleep(0.05)
        send_chunk(sock, b"y" * MiB)
        sock.sendall(b"0\r\n\r\n")
        reply = parse_reply(read_reply(sock))
        sock.close()
        assert reply.status == 201
        assert reply.headers.get("connection") == "close"
        assert server.proc.wait(30) == 0
    head = s3.head_object(Bucket=bucket, Key="finished.bin")
    assert head["ContentLength"] == 7 * MiB
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")

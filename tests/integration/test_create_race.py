"""A key created by someone else while a PUT is under way is not replaced (SEMANTICS, PUT:
"Creating in default mode is create-only at the commit, whatever the body's size: a key created
by someone else meanwhile is not replaced (412, the upload aborted)").

A real ``bucketdav serve`` over moto, and a real race: the other writer creates the key straight
in the bucket after the gateway has checked that the name is free and before it commits, at a
moment the test chooses (the upload is open, or the 100 Continue has been sent).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from tests.apps import parse_head
from tests.gatewayproc import GatewayProcess, running_gateway
from tests.servers import client, create_bucket

MiB = 1024 * 1024
THEIRS = b"written by someone else meanwhile"


@pytest.fixture
def gateway(moto_server: str) -> Iterator[tuple[GatewayProcess, str]]:
    bucket = create_bucket(moto_server)
    with running_gateway(f"s3://{bucket}", "--endpoint-url", moto_server, "--force-path-style",
                         "--write-part-size", "5") as process:
        yield process, bucket


def connect(process: GatewayProcess) -> socket.socket:
    host, port = process.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=60)


def read_head(sock: socket.socket) -> tuple[int, dict[str, str]]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed after {data!r}"
        data += chunk
    return parse_head(data.split(b"\r\n\r\n", 1)[0])


def wait_until(condition: Callable[[], object], what: str, limit: float = 60.0) -> None:
    """Poll a condition (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def test_a_multipart_put_does_not_replace_a_key_created_while_its_body_streams(
    gateway: tuple[GatewayProcess, str], moto_server: str
) -> None:
    process, bucket = gateway
    s3 = client(moto_server)
    ours = bytes(range(256)) * (48 * 1024)  # 12 MiB: three parts of 5 MiB
    with connect(process) as sock:
        sock.sendall(f"PUT /race.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {len(ours)}\r\n"
                     "\r\n".encode() + ours[: 6 * MiB])
        # The upload is open: the gateway has found the name free and is streaming parts.
        wait_until(lambda: s3.list_multipart_uploads(Bucket=bucket).get("Uploads"),
                   "the multipart upload to start")
        s3.put_object(Bucket=bucket, Key="race.bin", Body=THEIRS)
        sock.sendall(ours[6 * MiB :])
        status, _ = read_head(sock)
    assert status == 412
    assert s3.get_object(Bucket=bucket, Key="race.bin")["Body"].read() == THEIRS
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_single_part_put_does_not_replace_a_key_created_after_its_100_continue(
    gateway: tuple[GatewayProcess, str], moto_server: str
) -> None:
    process, bucket = gateway
    s3 = client(moto_server)
    ours = b"ours, small enough for one PutObject"
    with connect(process) as sock:
        sock.sendall(f"PUT /small.txt HTTP/1.1\r\nHost: x\r\nContent-Length: {len(ours)}\r\n"
                     "Expect: 100-continue\r\n\r\n".encode())
        # The 100 comes once every check has passed: the name was free then.
        assert read_head(sock)[0] == 100
        s3.put_object(Bucket=bucket, Key="small.txt", Body=THEIRS)
        sock.sendall(ours)
        status, _ = read_head(sock)
    assert status == 412
    assert s3.get_object(Bucket=bucket, Key="small.txt")["Body"].read() == THEIRS

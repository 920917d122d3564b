"""Reads cut short are expected events (issue 9, item 12), on a real ``bucketdav serve``:
a client that goes away mid-body (as aria2c, ffmpeg and webdav4 do on every seek) and an
object replaced while it is read each give one access-log line with the bytes actually
sent and one counted request, never a traceback or an error line."""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import time
import urllib.request
from pathlib import Path

from tests.gatewayproc import bucketdav

SIZE = 64 * 1024 * 1024
HEAD = b"GET /big.bin HTTP/1.1\r\nHost: h\r\n\r\n"


def connect(url: str) -> socket.socket:
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=30)


def read_some(conn: socket.socket, at_least: int) -> int:
    got = 0
    while got < at_least:
        chunk = conn.recv(65536)
        if not chunk:
            break
        got += len(chunk)
    return got


def walk_away(url: str, reset: bool) -> None:
    conn = connect(url)
    conn.sendall(HEAD)
    read_some(conn, 1024 * 1024)
    if reset:  # an RST, as a client killed mid-read sends
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def replaced_mid_read(url: str, path: Path) -> int:
    conn = connect(url)
    conn.sendall(HEAD)
    got = read_some(conn, 1024 * 1024)
    replacement = path.with_name("new.bin")
    replacement.write_bytes(b"\1" * SIZE)
    os.replace(replacement, path)
    got += read_some(conn, SIZE * 2)  # until the server cuts the connection
    conn.close()
    return got


def requests_counted(admin: str) -> float:
    with urllib.request.urlopen(admin + "/metrics", timeout=30) as resp:
        metrics = resp.read().decode()
    found = re.search(r'^bucketdav_http_requests_total\{method="GET",status="200"\} (\S+)$',
                      metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_cut_reads_are_one_access_line_and_one_counted_request(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * SIZE)
    with bucketdav(str(tmp_path), "--log-format", "json", "--memory-target", "32") as server:
        for reset in (False, True, False, True):
            walk_away(server.url, reset)
        received = replaced_mid_read(server.url, big)
        assert received < SIZE  # the read was cut, never finished with mixed bytes
        deadline = time.monotonic() + 10
        while requests_counted(server.admin) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        counted = requests_counted(server.admin)
        assert server.stop() == 0
    output = server.output()
    assert "Traceback" not in output
    assert not [line for line in output.splitlines() if '"level": "error"' in line]
    access = [json.loads(line) for line in output.splitlines()
              if line.startswith("{") and '"bucketdav.access"' in line]
    reads = [entry for entry in access if entry["path"] == "/big.bin"]
    assert len(reads) == 5
    assert all(entry["status"] == 200 for entry in reads)
    assert all(1024 * 1024 <= entry["bytes_out"] < SIZE for entry in reads)
    assert counted == 5

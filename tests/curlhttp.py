"""curl as the client of a real ``bucketdav serve`` process: the same bytes on the wire
that an operator's curl sends, paths as given (``--path-as-is``, no ``[]`` globbing)."""

from __future__ import annotations

import subprocess


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-s", "--path-as-is", "-g", *args], capture_output=True, timeout=60, check=False
    )


def curl_status(*args: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (last response, lower-case names) and body of one curl request."""
    out = curl("-i", *args).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body

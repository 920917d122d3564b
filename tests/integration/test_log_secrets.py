"""No credential reaches any log line of a real ``bucketdav serve`` (issue 9, item 10),
whatever a client puts where: userinfo in an absolute-form request target, an
Authorization header too long for the parser, a malformed request line or header that
carries the password. Everything the process writes (access log, error log, aiohttp's
own lines), at every level and in both formats, is searched for the secret."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import pytest

from tests.auth.support import bcrypt_hash
from tests.gatewayproc import bucketdav

SECRET = "S3cr3t-Horse-Battery"
TOKEN = base64.b64encode(f"alice:{SECRET}".encode()).decode()


def raw(url: str, request: bytes) -> bytes:
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(request)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
        return reply


def attacks(url: str) -> list[bytes]:
    long_token = base64.b64encode(f"alice:{SECRET * 700}".encode())
    head = b"Host: h\r\nConnection: close\r\n"
    return [
        f"GET http://alice:{SECRET}@h/f.txt HTTP/1.1\r\n".encode() + head + b"\r\n",
        f"GET http://alice:{SECRET}@h/f.txt?x=1 HTTP/1.1\r\n".encode() + head
        + f"Authorization: Basic {TOKEN}\r\n\r\n".encode(),
        f"GET http://alice:{SECRET}@h/ HTTP/1.1\r\n".encode() + head
        + f"Authorization: Basic {TOKEN}\r\n\r\n".encode(),
        b"GET /f.txt HTTP/1.1\r\n" + head + b"Authorization: Basic " + long_token + b"\r\n\r\n",
        # a request line over --max-url-bytes, userinfo first
        f"GET http://alice:{SECRET}@h/{'a' * 9000} HTTP/1.1\r\n".encode() + head + b"\r\n",
        # a request line the parser cannot read at all
        f"GET http://alice:{SECRET}@h/f.txt HTTP/1.1 junk\r\n".encode() + head + b"\r\n",
        f"G\x01T http://alice:{SECRET}@h/ HTTP/1.1\r\n".encode() + head + b"\r\n",
        # a header line the parser refuses, holding the credentials
        b"GET /f.txt HTTP/1.1\r\n" + head + f"Authorization: Basic {TOKEN}\x01\r\n\r\n".encode(),
        b"GET /f.txt HTTP/1.1\r\n" + head + f"Bad Header: {TOKEN}\r\n\r\n".encode(),
    ]


@pytest.mark.parametrize(("level", "fmt"), [("info", "text"), ("debug", "json")])
def test_no_log_line_holds_a_credential(tmp_path: Path, level: str, fmt: str) -> None:
    (tmp_path / "f.txt").write_text("content")
    config = tmp_path / "c.toml"
    config.write_text(f'[[user]]\nname = "alice"\npassword_hash = "{bcrypt_hash(SECRET)}"\n')
    with bucketdav(str(tmp_path), "--config", str(config), "--log-level", level,
                   "--log-format", fmt) as server:
        replies = [raw(server.url, request) for request in attacks(server.url)]
        assert server.stop() == 0
    assert replies[1].startswith(b"HTTP/1.1 200")  # the absolute form itself is served
    assert all(reply.startswith(b"HTTP/1.") for reply in replies)
    output = server.output()
    assert "bucketdav.access" in output  # the requests were logged...
    assert SECRET not in output  # ...without the password
    assert base64.b64encode(b"alice:").decode()[:7] not in output  # nor its base64
    assert "Traceback" not in output

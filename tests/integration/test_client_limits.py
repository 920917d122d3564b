"""One client cannot take the whole server (issue "Hardening"), against real processes.

The attacks that once held every slot: PUTs trickling a byte every few seconds held every
upload slot (every other user got 503); connections sending their heads slowly held
``--max-client-connections``. Now each client has its own share: uploads per user (per
address when anonymous), connections per address, a deadline for the request head and a
minimum rate for request bodies, each a flag, each refusal naming its flag.

Every test client is on loopback; binding a client socket to 127.0.0.2 (any 127/8 address
works on Linux without setup) makes it a second address.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import trustme

from tests.auth.support import bcrypt_hash
from tests.gatewayproc import GatewayProcess, bucketdav, running_gateway
from tests.servers import client, create_bucket

PASSWORD = "correct horse battery"
OTHER_ADDRESS = "127.0.0.2"
MiB = 1024 * 1024


def connect(url: str, source: str = "127.0.0.1") -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30,
                                    source_address=(source, 0))


def auth(user: str) -> str:
    token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    return f"Authorization: Basic {token}\r\n"


def slow_put(url: str, name: str, user: str | None = None, source: str = "127.0.0.1",
             length: int = 1000, extra: str = "") -> socket.socket:
    """A PUT announcing ``length`` bytes that sends its head and one byte, then waits."""
    sock = connect(url, source)
    head = (f"PUT /{name} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
            + (auth(user) if user else "") + extra + "\r\n")
    sock.sendall(head.encode() + b"x")
    return sock


def put(url: str, name: str, body: bytes, user: str | None = None,
        source: str = "127.0.0.1", extra: str = "") -> tuple[int, dict[str, str], bytes]:
    with contextlib.closing(connect(url, source)) as sock:
        head = (f"PUT /{name} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                + (auth(user) if user else "") + extra + "Connection: close\r\n\r\n")
        sock.sendall(head.encode() + body)
        return read_reply(sock)


def read_reply(sock: socket.socket, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """One reply: its head, and its body by Content-Length (a refused upload's connection
    stays open a while, as aiohttp lingers to read what the client may still send)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed by the server after {data!r}"
        data += chunk
    return parse_reply(sock, data)


def parse_reply(sock: socket.socket, data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk, "the reply was cut short"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def request(sock: socket.socket, text: str) -> bytes:
    """One request on a kept-alive connection: the head of its reply (bodies are empty)."""
    sock.sendall(text.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed by the server"
        data += chunk
    return data


def metric(process: GatewayProcess, name: str) -> float:
    with urllib.request.urlopen(process.admin + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@contextlib.contextmanager
def holding(sockets: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def users_config(folder: Path) -> Path:
    data = folder / "data"
    data.mkdir()
    hashed = bcrypt_hash(PASSWORD)
    config = folder / "c.toml"
    config.write_text(
        f'[[share]]\npath = "/"\nsource = "{data}"\n\n'
        f'[[user]]\nname = "mallory"\npassword_hash = "{hashed}"\n\n'
        f'[[user]]\nname = "bob"\npassword_hash = "{hashed}"\n'
    )
    return data


class TestUploadsPerClient:
    def test_one_users_slow_uploads_leave_another_users_put_served(self, tmp_path: Path
                                                                     ) -> None:
        data = users_config(tmp_path)
        with bucketdav("--config", str(tmp_path / "c.toml"), "--max-uploads", "4",
                       "--max-uploads-per-client", "2") as gateway:
            with holding([slow_put(gateway.url, f"slow{i}.bin", "mallory") for i in range(2)]):
                wait_for(lambda: metric(gateway, "bucketdav_uploads_in_flight") == 2,
                         "the slow uploads never started")
                # mallory tries to take the other slots too: refused, naming the limit
                for i in range(2, 4):
                    with contextlib.closing(slow_put(gateway.url, f"slow{i}.bin", "mallory")
                                            ) as sock:
                        status, headers, body = read_reply(sock)
                    assert status == 429
                    assert headers["retry-after"] == "5"
                    assert b"--max-uploads-per-client 2" in body
                assert put(gateway.url, "bob.txt", b"bob's file", "bob")[0] == 201
            output = gateway.output()
        assert (data / "bob.txt").read_bytes() == b"bob's file"
        assert not any(data.glob("slow*"))
        assert "Traceback" not in output

    def test_anonymous_clients_are_counted_per_address(self, tmp_path: Path) -> None:
        flags = ("--max-uploads", "4", "--max-uploads-per-client", "2")
        with bucketdav(str(tmp_path), *flags) as gateway, \
                holding([slow_put(gateway.url, f"s{i}.bin") for i in range(2)]):
            wait_for(lambda: metric(gateway, "bucketdav_uploads_in_flight") == 2,
                     "the slow uploads never started")
            status, _, body = put(gateway.url, "more.txt", b"more")
            assert status == 429
            assert b"this address" in body and b"--max-uploads-per-client" in body
            assert put(gateway.url, "other.txt", b"other", source=OTHER_ADDRESS)[0] == 201
        assert (tmp_path / "other.txt").read_bytes() == b"other"
        assert not (tmp_path / "more.txt").exists()


class TestBehindATrustedProxy:
    def test_anonymous_uploads_count_by_the_address_the_proxy_names(self, tmp_path: Path
                                                                     ) -> None:
        flags = ("--max-uploads-per-client", "1", "--trusted-proxy", "127.0.0.1")
        first = "X-Forwarded-For: 198.51.100.1\r\n"
        with bucketdav(str(tmp_path), *flags) as gateway, \
                holding([slow_put(gateway.url, "slow.bin", extra=first)]):
            wait_for(lambda: metric(gateway, "bucketdav_uploads_in_flight") == 1,
                     "the slow upload never started")
            assert put(gateway.url, "same.txt", b"same", extra=first)[0] == 429
            other = "X-Forwarded-For: 198.51.100.2\r\n"
            assert put(gateway.url, "other.txt", b"other", extra=other)[0] == 201
        assert (tmp_path / "other.txt").read_bytes() == b"other"

    def test_a_trusted_proxy_is_not_held_to_the_per_address_limit(self, tmp_path: Path
                                                                    ) -> None:
        flags = ("--max-connections-per-address", "2", "--trusted-proxy", "127.0.0.1")
        with bucketdav(str(tmp_path), *flags) as gateway, \
                holding([connect(gateway.url) for _ in range(3)]), \
                holding([connect(gateway.url, OTHER_ADDRESS) for _ in range(2)]):
            wait_for(lambda: metric(gateway, "bucketdav_open_connections") == 5,
                     "the proxy's connections were refused")
            with contextlib.closing(connect(gateway.url, OTHER_ADDRESS)) as sock:
                assert read_reply(sock)[0] == 429  # an address that is no proxy is held to it


class TestConnectionsPerAddress:
    def test_one_address_cannot_hold_every_connection(self, tmp_path: Path) -> None:
        (tmp_path / "a.txt").write_text("a")
        with bucketdav(str(tmp_path), "--max-client-connections", "6",
                       "--max-connections-per-address", "3") as gateway:
            with holding([connect(gateway.url) for _ in range(3)]) as held:
                wait_for(lambda: metric(gateway, "bucketdav_open_connections") == 3,
                         "the connections were never seen")
                for _ in range(3):  # the rest of the server's slots: refused to this address
                    with contextlib.closing(connect(gateway.url)) as sock:
                        status, headers, body = read_reply(sock)
                    assert status == 429
                    assert headers["retry-after"] == "1"
                    assert b"--max-connections-per-address 3" in body
                with contextlib.closing(connect(gateway.url, OTHER_ADDRESS)) as sock:
                    reply = request(sock, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                assert reply.startswith(b"HTTP/1.1 200 ")
                held.pop().close()  # a slot of its own frees up: the address is served again
                wait_for(lambda: metric(gateway, "bucketdav_open_connections") == 2,
                         "the closed connection was never seen")
                with contextlib.closing(connect(gateway.url)) as sock:
                    assert request(sock, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
                        b"HTTP/1.1 200 ")
            assert metric(gateway, "bucketdav_refused_connections_total") == 3


class TestSlowHeads:
    def test_a_head_sent_slowly_is_cut_at_the_header_timeout(self, tmp_path: Path) -> None:
        with running_gateway(str(tmp_path), "--header-timeout", "1") as gateway, \
                contextlib.closing(connect(gateway.url)) as sock:
            start = time.monotonic()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            sock.settimeout(0.2)
            reply = b""
            with contextlib.suppress(OSError):  # a byte sent after the close may reset
                while time.monotonic() - start < 15:
                    sock.sendall(b"X-Slow: 1\r\n")  # one header line every 0.2 s, no end
                    with contextlib.suppress(TimeoutError):
                        chunk = sock.recv(65536)
                        if not chunk:
                            break
                        reply += chunk
            took = time.monotonic() - start
        assert reply.startswith(b"HTTP/1.1 408 ")
        assert b"--header-timeout" in reply
        assert took < 5

    def test_a_tls_handshake_never_finished_is_cut_at_the_header_timeout(self, tmp_path: Path
                                                                          ) -> None:
        ca = trustme.CA()
        issued = ca.issue_cert("127.0.0.1")
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
        issued.private_key_pem.write_to_path(str(key))
        (tmp_path / "data").mkdir()
        with running_gateway(str(tmp_path / "data"), "--tls-cert", str(cert), "--tls-key",
                             str(key), "--header-timeout", "1") as gateway, \
                contextlib.closing(connect(gateway.url)) as sock:
            start = time.monotonic()
            sock.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and no more
            sock.settimeout(30)
            with contextlib.suppress(ConnectionResetError):
                while sock.recv(65536):
                    pass
            took = time.monotonic() - start
        assert took < 5, f"a stalled handshake held its connection for {took:.0f} s"

    def test_an_idle_kept_alive_connection_is_not_a_slow_head(self, tmp_path: Path) -> None:
        (tmp_path / "a.txt").write_text("a")
        with running_gateway(str(tmp_path), "--header-timeout", "0.5") as gateway, \
                contextlib.closing(connect(gateway.url)) as sock:
            head = "HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
            assert request(sock, head).startswith(b"HTTP/1.1 200 ")
            time.sleep(1.5)  # idle between requests: --keepalive-timeout's business
            assert request(sock, head).startswith(b"HTTP/1.1 200 ")


class TestMinimumUploadRate:
    def test_a_trickle_is_cut_and_nothing_is_written(self, tmp_path: Path) -> None:
        with running_gateway(str(tmp_path), "--min-upload-rate", "1K",
                             "--upload-rate-grace", "1") as gateway, \
                contextlib.closing(slow_put(gateway.url, "trickle.bin")) as sock:
            start = time.monotonic()
            reply = trickle(sock, deadline=start + 15)
            took = time.monotonic() - start
        assert reply[0] == 408
        assert b"--min-upload-rate" in reply[2]
        assert took < 6
        assert list(tmp_path.iterdir()) == []

    def test_a_slow_upload_above_the_rate_is_stored(self, tmp_path: Path) -> None:
        body = b"s" * 12 * 1024
        with running_gateway(str(tmp_path), "--min-upload-rate", "1K",
                             "--upload-rate-grace", "1") as gateway, \
                contextlib.closing(connect(gateway.url)) as sock:
            sock.sendall(f"PUT /steady.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}"
                         "\r\nConnection: close\r\n\r\n".encode())
            for i in range(0, len(body), 1024):  # 4 KiB/s for 3 s
                sock.sendall(body[i:i + 1024])
                time.sleep(0.25)
            assert read_reply(sock)[0] == 201
        assert (tmp_path / "steady.bin").read_bytes() == body

    def test_a_multipart_upload_turned_trickle_is_aborted(self, moto_server: str) -> None:
        bucket = create_bucket(moto_server)
        s3 = client(moto_server)
        with running_gateway(f"s3://{bucket}", "--endpoint-url", moto_server,
                             "--write-part-size", "5", "--min-upload-rate", "64K",
                             "--upload-rate-grace", "1") as gateway, \
                contextlib.closing(slow_put(gateway.url, "big.bin", length=16 * MiB)) as sock:
            sock.sendall(b"b" * (6 * MiB))  # a first part, fast: a multipart upload opens
            wait_for(lambda: bool(s3.list_multipart_uploads(Bucket=bucket).get("Uploads")),
                     "the multipart upload never started")
            status, _, body = trickle(sock, deadline=time.monotonic() + 20)
            output = gateway.output()
        assert status == 408 and b"--min-upload-rate" in body
        wait_for(lambda: not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"),
                 "the multipart upload was never aborted")
        assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []
        assert "Traceback" not in output


def trickle(sock: socket.socket, deadline: float) -> tuple[int, dict[str, str], bytes]:
    """Send a byte every 0.3 s until the server answers; its reply."""
    sock.settimeout(0.3)
    data = b""
    while b"\r\n\r\n" not in data:
        assert time.monotonic() < deadline, "the server never cut the trickle"
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            sock.sendall(b"x")
            continue
        assert chunk, "closed without an answer"
        data += chunk
    sock.settimeout(30)
    return parse_reply(sock, data)

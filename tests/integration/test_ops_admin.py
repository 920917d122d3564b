"""The admin port of a real ``bucketdav serve``."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

from tests.gatewayproc import bucketdav


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_probes_and_metrics_on_the_admin_port(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with bucketdav(str(tmp_path)) as server:
        assert server.admin != server.url
        assert get(server.admin + "/livez") == (200, b"ok\n")
        assert get(server.admin + "/readyz") == (200, b"ready\n")
        assert get(server.url + "/f.txt") == (200, b"x")
        status, body = get(server.admin + "/metrics")
        assert status == 200
        assert b'bucketdav_http_requests_total{method="GET",status="200"} 1.0' in body
        # the admin paths are not the shares' paths, and the reverse
        assert get(server.url + "/livez")[0] == 404
        assert get(server.admin + "/f.txt")[0] == 404


def test_a_taken_admin_port_is_reported_and_the_shares_still_serve(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with bucketdav(str(tmp_path), "--admin-port", str(port)) as server:
            assert get(server.url + "/f.txt") == (200, b"x")
            assert "warning: no admin endpoints: cannot listen on" in server.output()

"""Several shares in one real ``bucketdav serve``: ``/`` lists them for browsers and WebDAV
clients (Windows probes ``OPTIONS /`` and ``PROPFIND /``), writes at ``/`` are refused,
each share keeps its own policy, and the admin port reports on every store."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from tests.gatewayproc import bucketdav


def call(url: str, method: str = "GET", data: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return int(resp.status), dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_two_shares_from_a_config_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "doc.txt").write_text("doc")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[[share]]\npath = "/alpha/"\nsource = "{tmp_path / "a"}"\n'
        f'[[share]]\npath = "/beta/"\nsource = "{tmp_path / "b"}"\nread_only = true\n'
    )
    with bucketdav("--config", str(config)) as server:
        url = server.url
        assert "serving 2 shares (/alpha/, /beta/)" in server.output()
        status, headers, _ = call(url + "/", "OPTIONS")
        assert status == 200 and "2" in headers["DAV"]
        status, _, body = call(url + "/", "PROPFIND", headers={"Depth": "1"})
        assert status == 207
        assert b"<D:href>/alpha/</D:href>" in body and b"<D:href>/beta/</D:href>" in body
        status, _, body = call(url + "/?format=json")
        assert status == 200 and b'"alpha"' in body and b'"beta"' in body
        assert call(url + "/stray.txt", "PUT", b"x")[0] == 403
        assert call(url + "/beta/new.txt", "PUT", b"x")[0] == 403
        assert call(url + "/alpha/new.txt", "PUT", b"x")[0] == 201
        assert call(url + "/beta/doc.txt")[2] == b"doc"
        assert call(url + "/gamma/")[0] == 404
        status, _, body = call(server.admin + "/readyz")
        assert (status, body) == (200, b"ready\n")
        status, _, body = call(server.admin + "/metrics")
        assert b'bucketdav_store_requests_total{op="check",share="/beta/"}' in body
    assert (tmp_path / "a" / "new.txt").read_text() == "x"
    assert not (tmp_path / "stray.txt").exists()

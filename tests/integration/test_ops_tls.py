"""TLS: a real ``bucketdav serve`` with a certificate from a test CA, reached with curl."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
import trustme

from gateway.server import tls_context
from tests.auth.support import bcrypt_hash
from tests.gatewayproc import bucketdav, run_bucketdav


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    paths["cert"].write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return paths


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_context_refuses_anything_older_than_tls_1_2(pki: dict[str, Path]) -> None:
    context = tls_context(str(pki["cert"]), str(pki["key"]))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_https_with_the_test_ca(pki: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hello over tls")
    with bucketdav(str(tmp_path), "--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"])
                   ) as server:
        assert server.url.startswith("https://127.0.0.1:")
        ok = curl("--cacert", str(pki["ca"]), server.url + "/hello.txt")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout == "hello over tls"
        tls12 = curl("--cacert", str(pki["ca"]), "--tlsv1.2", "--tls-max", "1.2",
                     server.url + "/hello.txt")
        assert tls12.stdout == "hello over tls"
        untrusted = curl(server.url + "/hello.txt")
        assert untrusted.returncode == 60  # the certificate is checked, and not trusted
        plain_http = curl(server.url.replace("https://", "http://") + "/hello.txt")
        assert "hello over tls" not in plain_http.stdout


def test_basic_auth_over_https(pki: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f.txt").write_text("secret data")
    config = tmp_path / "c.toml"
    config.write_text(f'[[user]]\nname = "alice"\npassword_hash = "{bcrypt_hash("pw")}"\n')
    with bucketdav(str(tmp_path / "data"), "--config", str(config), "--tls-cert",
                   str(pki["cert"]), "--tls-key", str(pki["key"])) as server:
        anonymous = curl("--cacert", str(pki["ca"]), "-o", "/dev/null", "-w", "%{http_code}",
                         server.url + "/f.txt")
        assert anonymous.stdout == "401"
        alice = curl("--cacert", str(pki["ca"]), "-u", "alice:pw", server.url + "/f.txt")
        assert alice.stdout == "secret data"


def test_a_key_that_does_not_match_stops_startup(pki: dict[str, Path], tmp_path: Path
                                                 ) -> None:
    other = trustme.CA().issue_cert("127.0.0.1")
    wrong_key = tmp_path / "wrong.pem"
    other.private_key_pem.write_to_path(str(wrong_key))
    result = run_bucketdav(str(tmp_path), "--port", "0", "--no-admin", "--tls-cert",
                           str(pki["cert"]), "--tls-key", str(wrong_key))
    assert result.returncode == 2
    assert "cannot use --tls-cert" in result.stderr

"""A real ``bucketdav serve`` with the bucket owner's write options, on moto, seen from
both sides: curl as the client (Repr-Digest, a refused Content-MD5) and a recording TCP
proxy in front of moto (the headers of every request the gateway sent); plus the
combinations refused at startup with one line and exit status 2."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from tests.curlhttp import curl_status
from tests.gatewayproc import run_bucketdav, running_gateway
from tests.servers import client, create_bucket
from tests.tcpcount import counting_proxy

OWNER = "123456789012"  # moto's account, the owner of its buckets


def test_a_served_share_writes_as_the_owner_wants_and_serves_repr_digest(
    moto_server: str, tmp_path: Path
) -> None:
    bucket = create_bucket(moto_server)
    data = b"written by curl through the gateway\n"
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    (tmp_path / "f.txt").write_bytes(data)
    with counting_proxy(moto_server, record=True) as proxy, running_gateway(
        f"s3://{bucket}", "--endpoint-url", proxy.url, "--force-path-style",
        "--sse", "AES256", "--storage-class", "STANDARD_IA", "--requester-pays",
        "--expected-bucket-owner", OWNER, "--upload-checksums", "sha256",
        "--allow-delete", "--metadata-ttl", "0",
    ) as gateway:
        url = gateway.url.rstrip("/")
        wrong = base64.b64encode(hashlib.md5(b"not it").digest()).decode()
        status, _, body = curl_status("-T", str(tmp_path / "f.txt"), "-H", f"Content-MD5: {wrong}",
                               f"{url}/bad.txt")
        assert status == 400 and b"nothing was written" in body
        assert curl_status("-I", f"{url}/bad.txt")[0] == 404
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        status, _, _ = curl_status("-T", str(tmp_path / "f.txt"), "-H", f"Content-MD5: {md5}",
                            f"{url}/f.txt")
        assert status == 201
        status, headers, _ = curl_status("-I", f"{url}/f.txt")
        assert status == 200 and headers["repr-digest"] == f"sha-256=:{sha}:"
        status, headers, body = curl_status("-H", "Want-Repr-Digest: sha-256=10", f"{url}/f.txt")
        assert body == data and headers["repr-digest"] == f"sha-256=:{sha}:"
        assert curl_status("-X", "PROPFIND", "-H", "Depth: 1", f"{url}/")[0] == 207
        copied = curl_status("-X", "COPY", "-H", f"Destination: {url}/g.txt", f"{url}/f.txt")
        assert copied[0] == 201
        assert curl_status("-X", "DELETE", f"{url}/g.txt")[0] == 204
        requests = proxy.requests()
    head = client(moto_server).head_object(Bucket=bucket, Key="f.txt", ChecksumMode="ENABLED")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["ChecksumSHA256"] == sha
    methods = {method for method, _, _ in requests}
    assert methods >= {"GET", "PUT", "HEAD", "DELETE"}
    for method, target, headers in requests:
        assert headers.get("x-amz-request-payer") == "requester", (method, target)
        assert headers.get("x-amz-expected-bucket-owner") == OWNER, (method, target)
    puts = [h for m, t, h in requests if m == "PUT" and "x-amz-copy-source" not in h]
    assert puts and all(h["x-amz-server-side-encryption"] == "AES256" for h in puts)
    assert all("x-amz-checksum-sha256" in h for h in puts)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["s3://b", "--sse-kms-key-id", "k"], "--sse-kms-key-id needs --sse aws:kms"),
        (["s3://b", "--sse", "aws:kms", "--storage-class", "COLD"], "--storage-class 'COLD'"),
        (["r2://b", "--account-id", "a", "--requester-pays"], "R2 has no requester-pays"),
        (["gs://b", "--expected-bucket-owner", OWNER], "GCS does not check a bucket owner"),
        (["gs://b", "--requester-pays"], "needs --user-project"),
        (["{folder}", "--sse", "AES256"], "--sse is for object stores"),
    ],
)
def test_a_refused_combination_stops_startup_with_one_line(
    args: list[str], says: str, tmp_path: Path
) -> None:
    args = [a.replace("{folder}", str(tmp_path)) for a in args]
    proc = run_bucketdav(*args, "--port", "0", "--no-admin")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], proc.stderr

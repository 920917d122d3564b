"""Checksums end to end with the real rclone (issue 12, point 3): its webdav backend with
``vendor=owncloud`` asks PROPFIND for ``oc:checksums`` and sends ``OC-Checksum`` on PUT.
Over moto, a single-part object's ETag is the MD5 of its bytes, so ``rclone copy
--checksum`` twice moves nothing the second time, and a file changed without changing its
size or time is copied again: checksums decided, not sizes. A PUT whose ``OC-Checksum``
does not match its body writes nothing; a share under SSE-KMS (whose ETags are no MD5s)
shows no checksum."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.gatewayproc import GatewayProcess, running_gateway
from tests.integration.test_mtime import final_stats, rclone, remote
from tests.integration.trees import write_tree
from tests.servers import client, create_bucket

WHEN = 1_588_748_889  # whole seconds, as rclone sends them
FILES = {"a.txt": b"hello\n", "sub/b.txt": b"world\n", "sub/c.txt": b"third one\n"}
ASK = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
       "<d:prop><d:getcontentlength/><oc:checksums/></d:prop></d:propfind>")


def copy(source: Path, process: GatewayProcess) -> dict[str, int]:
    result = rclone("copy", "--checksum", "--use-json-log", "-v", str(source), remote(process))
    assert result.returncode == 0, result.stderr
    stats = final_stats(result)
    assert stats["errors"] == 0, result.stderr
    return stats


def curl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-s", *args], capture_output=True, text=True, timeout=60,
                          check=True, input=data.decode() if data is not None else None)


def put(url: str, data: bytes, oc_checksum: str) -> tuple[str, str]:
    """(status, body) of a PUT carrying ``OC-Checksum``. A typed body: moto empties one
    sent as curl's default application/x-www-form-urlencoded."""
    answer = curl("-w", "\n%{http_code}", "-X", "PUT", "--data-binary", "@-",
                  "-H", "Content-Type: text/plain", "-H", f"OC-Checksum: {oc_checksum}", url,
                  data=data).stdout
    text, _, status = answer.rpartition("\n")
    return status, text


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "src", FILES, WHEN)


@pytest.fixture
def on_moto(moto_server: str) -> Iterator[tuple[GatewayProcess, str]]:
    bucket = create_bucket(moto_server)
    # --allow-overwrite: the third copy replaces a file with data.
    with running_gateway(f"s3://{bucket}", "--endpoint-url", moto_server,
                         "--force-path-style", "--allow-overwrite") as process:
        yield process, bucket


def test_copy_with_checksums_twice_moves_nothing_and_a_changed_file_moves(
    on_moto: tuple[GatewayProcess, str], source: Path, moto_server: str
) -> None:
    process, bucket = on_moto
    assert copy(source, process)["transfers"] == len(FILES)

    check = rclone("check", "--checksum", str(source), remote(process))
    assert check.returncode == 0, check.stderr
    assert "0 differences found" in check.stderr
    assert "could not be checked" not in check.stderr, check.stderr  # hashes compared

    second = copy(source, process)
    assert second["transfers"] == 0 and second["checks"] == len(FILES)

    # Same size, same time, other bytes: only a checksum can tell.
    changed = source / "sub" / "b.txt"
    changed.write_bytes(b"WORLD\n")
    os.utime(changed, (WHEN, WHEN))
    third = copy(source, process)
    assert third["transfers"] == 1
    body = client(moto_server).get_object(Bucket=bucket, Key="dst/sub/b.txt")["Body"].read()
    assert body == b"WORLD\n"

    listing = curl("-X", "PROPFIND", "-H", "Depth: 1", "-H", "Content-Type: application/xml",
                   "--data", ASK, f"{process.url}/dst/sub/").stdout
    assert f"MD5:{hashlib.md5(changed.read_bytes()).hexdigest()}" in listing
    assert f"MD5:{hashlib.md5(FILES['sub/c.txt']).hexdigest()}" in listing


def test_oc_checksum_on_put_is_verified(on_moto: tuple[GatewayProcess, str],
                                        moto_server: str) -> None:
    process, bucket = on_moto
    data = b"checked bytes\n"
    wrong = hashlib.sha1(b"other bytes\n").hexdigest()
    status, text = put(f"{process.url}/bad.txt", data, f"SHA1:{wrong}")
    assert status == "400", text
    assert "OC-Checksum" in text and "nothing was written" in text
    with pytest.raises(ClientError):
        client(moto_server).head_object(Bucket=bucket, Key="bad.txt")

    for header in (f"SHA1:{hashlib.sha1(data).hexdigest()}",
                   f"MD5:{hashlib.md5(data).hexdigest().upper()}"):
        name = header.partition(":")[0].lower()
        status, text = put(f"{process.url}/good-{name}.txt", data, header)
        assert status == "201", text
        stored = client(moto_server).get_object(Bucket=bucket, Key=f"good-{name}.txt")
        assert stored["Body"].read() == data

    status, text = put(f"{process.url}/short.txt", data, "SHA1:abc")
    assert status == "400" and "40 hex digits" in text, text
    status, text = put(f"{process.url}/adler.txt", data, "ADLER32:084b021f")
    assert status == "201", text  # a type the gateway does not compute: ignored


def test_no_checksum_from_etags_under_sse_kms(moto_server: str) -> None:
    """SSE-KMS makes ETags that are not the MD5 of the bytes: none is shown."""
    bucket = create_bucket(moto_server)
    with running_gateway(f"s3://{bucket}", "--endpoint-url", moto_server,
                         "--force-path-style", "--sse", "aws:kms") as process:
        client(moto_server).put_object(Bucket=bucket, Key="f.txt", Body=b"data\n")
        answer = curl("-X", "PROPFIND", "-H", "Depth: 1", "--data", ASK,
                      f"{process.url}/").stdout
    assert "<D:getcontentlength>5</D:getcontentlength>" in answer
    assert "MD5:" not in answer

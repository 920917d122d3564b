"""Changes made behind the gateway's back show after ``--metadata-ttl`` and not before
(README: "Changes made to the bucket by others show within --metadata-ttl"; SEMANTICS,
Consistency). Not before: the cache is really used, so a HEAD, a listing and a probe of a
missing name cost no store request within the TTL. After: nothing stays stale past it.

A real ``bucketdav serve`` over moto; the other writer writes straight into the bucket.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from collections.abc import Iterator

import pytest

from tests.gatewayproc import GatewayProcess, running_gateway
from tests.servers import client, create_bucket

TTL = 4.0  # seconds: long enough that the checks inside it finish well before it ends


@pytest.fixture
def gateway(moto_server: str) -> Iterator[tuple[GatewayProcess, str]]:
    bucket = create_bucket(moto_server)
    client(moto_server).put_object(Bucket=bucket, Key="f.txt", Body=b"version 1")
    with running_gateway(f"s3://{bucket}", "--endpoint-url", moto_server, "--force-path-style",
                         "--metadata-ttl", str(TTL)) as process:
        yield process, bucket


class Seen:
    """What the gateway says about the bucket, through HTTP only."""

    def __init__(self, process: GatewayProcess) -> None:
        self.host, port = process.url.removeprefix("http://").split(":")
        self.port = int(port)

    def request(self, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, target)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def etag(self, name: str) -> str | None:
        status, headers, _ = self.request("HEAD", "/" + name)
        return headers["etag"] if status == 200 else None

    def listed(self) -> set[str]:
        status, _, body = self.request("GET", "/?format=json")
        assert status == 200
        return {entry["name"] for entry in json.loads(body)["entries"]}

    def state(self) -> tuple[str | None, str | None, set[str]]:
        return self.etag("f.txt"), self.etag("new.txt"), self.listed()


def test_a_change_behind_the_gateways_back_shows_after_the_ttl_and_not_before(
    gateway: tuple[GatewayProcess, str], moto_server: str
) -> None:
    process, bucket = gateway
    s3 = client(moto_server)
    seen = Seen(process)
    cached_at = time.monotonic()
    before = seen.state()  # fills the cache: the object, the missing name, the listing
    assert before[1:] == (None, {"f.txt"})
    changed = s3.put_object(Bucket=bucket, Key="f.txt", Body=b"version 2, longer")["ETag"]
    s3.put_object(Bucket=bucket, Key="new.txt", Body=b"new")
    assert changed != before[0]

    within = seen.state()
    assert time.monotonic() - cached_at < TTL, "the checks took longer than the TTL itself"
    assert within == before  # answered from the cache: the store was not asked

    deadline = cached_at + TTL + 30
    new_etag = '"' + hashlib.md5(b"new", usedforsecurity=False).hexdigest() + '"'
    # The three answers were cached a few milliseconds apart, so they may show the change
    # on successive looks, not on the same one.
    shown_at = None
    while (state := seen.state()) != (changed, new_etag, {"f.txt", "new.txt"}):
        if state != before and shown_at is None:
            shown_at = time.monotonic()
        assert time.monotonic() < deadline, "the change never showed"
        time.sleep(0.2)
    shown_at = time.monotonic() if shown_at is None else shown_at
    assert shown_at - cached_at >= TTL  # nothing expired early
    assert seen.request("GET", "/f.txt")[2] == b"version 2, longer"

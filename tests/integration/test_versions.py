"""Object versions on a versioned moto bucket: ``?versions``, ``?versionId`` (ranges,
conditionals, the version's ETag) and a share ``as_of`` a past time, over HTTP and
WebDAV, in-process and through a real ``bucketdav serve`` read with curl; a local folder
refuses versions with 501 and ``--as-of`` with one line at startup."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.settings import Policy
from gateway.storage.asof import as_of_store
from gateway.storage.s3 import S3Store
from tests.apps import app_for
from tests.curlhttp import curl_status
from tests.gatewayproc import run_bucketdav, running_gateway
from tests.servers import client, create_bucket, moto_settings

Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]
MakeClient = Callable[..., Awaitable[Client]]

MiB = 1024 * 1024
# Bigger than a block (1 MiB): a read of a version takes several ranged GETs.
V1 = bytes(range(256)) * (3 * MiB // 256)
V2 = b"second version\n" * 1000


@dataclass
class History:
    endpoint: str
    bucket: str
    v1: dict[str, str]  # VersionId, ETag
    v2: dict[str, str]
    marker: str  # the delete marker's version id
    between: datetime  # after v1 (and old.txt), before v2 (and new.txt)


def _tick() -> None:
    # Store dates may have whole seconds: keep each step in a second of its own.
    time.sleep(1.1)


def make_history(endpoint: str) -> History:
    """``f.bin``: v1, v2, then deleted; ``dir/old.txt`` before ``between`` and
    ``dir/new.txt`` after it."""
    bucket = create_bucket(endpoint)
    s3 = client(endpoint)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="f.bin", Body=V1)
    s3.put_object(Bucket=bucket, Key="dir/old.txt", Body=b"old")
    s3.put_object(Bucket=bucket, Key="gone.txt", Body=b"deleted before")
    s3.delete_object(Bucket=bucket, Key="gone.txt")
    _tick()
    between = datetime.now(UTC)
    _tick()
    v2 = s3.put_object(Bucket=bucket, Key="f.bin", Body=V2)
    s3.put_object(Bucket=bucket, Key="dir/new.txt", Body=b"new")
    _tick()
    marker = s3.delete_object(Bucket=bucket, Key="f.bin")["VersionId"]
    return History(endpoint, bucket, v1, v2, marker, between)


@pytest.fixture(scope="module")
def history(moto_server: str) -> History:
    return make_history(moto_server)


@pytest.fixture
async def store(history: History) -> AsyncIterator[S3Store]:
    s3 = await S3Store.create(history.bucket, moto_settings(history.endpoint))
    try:
        yield s3
    finally:
        await s3.close()


async def test_versions_lists_three_entries_newest_first_with_the_delete_marker(
    aiohttp_client: MakeClient, store: S3Store, history: History
) -> None:
    web = await aiohttp_client(app_for(store))
    resp = await web.get("/f.bin?versions", headers={"Accept": "application/json"})
    assert resp.status == 200
    entries = (await resp.json())["versions"]
    assert [e["version_id"] for e in entries] == [
        history.marker, history.v2["VersionId"], history.v1["VersionId"]]
    assert [e["delete_marker"] for e in entries] == [True, False, False]
    assert entries[0]["latest"] and entries[0]["href"] is None
    assert entries[1]["etag"] == history.v2["ETag"] and entries[1]["size"] == len(V2)
    assert entries[2]["etag"] == history.v1["ETag"] and entries[2]["size"] == len(V1)

    page = await web.get("/f.bin?versions", headers={"Accept": "text/html"})
    html = await page.text()
    assert page.status == 200 and "delete marker" in html
    assert html.index(history.v2["VersionId"]) < html.index(history.v1["VersionId"])
    policy = page.headers["Content-Security-Policy"]
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'<style nonce="{nonce}">' in html and "script-src" not in policy
    assert (await web.get("/nothing.bin?versions")).status == 404


async def test_version_id_reads_that_version_with_ranges_etag_and_conditionals(
    aiohttp_client: MakeClient, store: S3Store, history: History
) -> None:
    web = await aiohttp_client(app_for(store))
    v1 = history.v1["VersionId"]
    assert (await web.get("/f.bin")).status == 404  # the latest is a delete marker
    # The whole of v1, several ranged GETs: each must name v1, since a GET of the key
    # itself finds the delete marker and would fail the read.
    resp = await web.get(f"/f.bin?versionId={v1}")
    assert resp.status == 200 and await resp.read() == V1
    assert resp.headers["ETag"] == history.v1["ETag"]
    part = await web.get(f"/f.bin?versionId={v1}",
                         headers={"Range": f"bytes={MiB - 5}-{2 * MiB + 4}"})
    assert part.status == 206 and await part.read() == V1[MiB - 5 : 2 * MiB + 5]
    head = await web.head(f"/f.bin?versionId={history.v2['VersionId']}")
    assert head.status == 200 and head.headers["Content-Length"] == str(len(V2))
    assert head.headers["ETag"] == history.v2["ETag"]
    same = await web.get(f"/f.bin?versionId={v1}",
                         headers={"If-None-Match": history.v1["ETag"]})
    assert same.status == 304
    other = await web.get(f"/f.bin?versionId={v1}", headers={"If-Match": history.v2["ETag"]})
    assert other.status == 412
    marker = await web.get(f"/f.bin?versionId={history.marker}")
    assert marker.status == 404
    assert (await web.get("/f.bin?versionId=")).status == 400


async def as_of_client(aiohttp_client: MakeClient, store: S3Store, history: History) -> Client:
    policy = Policy(as_of=history.between, allow_overwrite=True, allow_delete=True)
    return await aiohttp_client(app_for(as_of_store(store, history.between), policy=policy))


async def test_an_as_of_share_serves_the_past_over_http_and_webdav(
    aiohttp_client: MakeClient, store: S3Store, history: History
) -> None:
    web = await as_of_client(aiohttp_client, store, history)
    resp = await web.get("/f.bin")
    assert resp.status == 200 and await resp.read() == V1
    assert resp.headers["ETag"] == history.v1["ETag"]
    part = await web.get("/f.bin", headers={"Range": "bytes=10-19"})
    assert await part.read() == V1[10:20]
    assert (await web.get("/dir/new.txt")).status == 404  # written after as_of
    assert (await web.get("/gone.txt")).status == 404  # deleted before as_of
    assert await (await web.get("/dir/old.txt")).read() == b"old"

    listing = await (await web.get("/?format=json")).json()
    names = {e["name"]: e for e in listing["entries"]}
    assert set(names) == {"f.bin", "dir"} and names["f.bin"]["size"] == len(V1)
    sub = await (await web.get("/dir/?format=json")).json()
    assert [e["name"] for e in sub["entries"]] == ["old.txt"]

    found = await web.request("PROPFIND", "/", headers={"Depth": "1"})
    body = await found.text()
    assert found.status == 207 and "f.bin" in body and "gone.txt" not in body
    assert f"getcontentlength>{len(V1)}</" in body
    inner = await (await web.request("PROPFIND", "/dir/", headers={"Depth": "1"})).text()
    assert "old.txt" in inner and "new.txt" not in inner


async def test_an_as_of_share_refuses_every_write_naming_as_of(
    aiohttp_client: MakeClient, store: S3Store, history: History
) -> None:
    web = await as_of_client(aiohttp_client, store, history)
    lock = (b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
            b'</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>')
    patch = (b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">'
             b'<D:set><D:prop><Z:a>1</Z:a></D:prop></D:set></D:propertyupdate>')
    for method, path, body in (
        ("PUT", "/new.txt", b"x"), ("PUT", "/f.bin", b"x"), ("DELETE", "/f.bin", b""),
        ("DELETE", "/dir/", b""), ("MKCOL", "/made/", b""), ("COPY", "/f.bin", b""),
        ("MOVE", "/dir/old.txt", b""), ("LOCK", "/f.bin", lock), ("PROPPATCH", "/f.bin", patch),
    ):
        headers = {"Destination": "/copy.bin"} if method in ("COPY", "MOVE") else {}
        resp = await web.request(method, path, data=body, headers=headers)
        assert resp.status == 403, (method, path, resp.status)
        assert "as_of" in await resp.text()
    listing = client(history.endpoint).list_objects_v2(Bucket=history.bucket)
    keys = {o["Key"] for o in listing.get("Contents", ())}
    assert not keys & {"new.txt", "f.bin", "made/", "copy.bin"} and "dir/old.txt" in keys


async def test_a_write_after_startup_does_not_leak_into_an_as_of_share(
    aiohttp_client: MakeClient, history: History
) -> None:
    bucket = history.bucket
    s3 = await S3Store.create(bucket, moto_settings(history.endpoint))
    try:
        web = await as_of_client(aiohttp_client, s3, history)
        assert await (await web.get("/dir/old.txt")).read() == b"old"
        client(history.endpoint).put_object(Bucket=bucket, Key="dir/old.txt", Body=b"later")
        client(history.endpoint).put_object(Bucket=bucket, Key="late.txt", Body=b"later")
        assert await (await web.get("/dir/old.txt")).read() == b"old"
        assert (await web.get("/late.txt")).status == 404
        names = [e["name"] for e in (await (await web.get("/?format=json")).json())["entries"]]
        assert "late.txt" not in names
    finally:
        await s3.close()


async def test_a_local_folder_answers_501_to_versions(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    from gateway.storage.local import LocalStore

    (tmp_path / "a.txt").write_bytes(b"a")
    web = await aiohttp_client(app_for(LocalStore(tmp_path)))
    for target in ("/a.txt?versionId=abc", "/a.txt?versions"):
        resp = await web.get(target)
        assert resp.status == 501 and "keeps no object versions" in await resp.text()
    assert await (await web.get("/a.txt")).read() == b"a"


def test_as_of_on_a_local_folder_stops_startup_with_one_line(tmp_path: Path) -> None:
    proc = run_bucketdav(str(tmp_path), "--as-of", "2026-01-01T00:00:00Z",
                         "--port", "0", "--no-admin")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "as_of" in lines[0] and "versions" in lines[0], proc.stderr


@pytest.mark.parametrize("value", ['"yesterday"', '"2026-01-01T00:00:00"', "2026-01-01T00:00:00"])
def test_a_malformed_as_of_stops_startup_with_one_line(value: str, tmp_path: Path) -> None:
    # In a [[share]] table (the last: a TOML local date-time, which has no offset).
    config = tmp_path / "bucketdav.toml"
    config.write_text(f'[[share]]\npath = "/"\nsource = "{tmp_path}"\nas_of = {value}\n')
    proc = run_bucketdav("--config", str(config), "--port", "0", "--no-admin")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "as_of" in lines[0] and "RFC 3339" in lines[0], proc.stderr


def test_curl_reads_a_version_and_an_as_of_share_from_real_processes(
    history: History
) -> None:
    common = ("--endpoint-url", history.endpoint, "--force-path-style")
    source = f"s3://{history.bucket}"
    v1 = history.v1["VersionId"]
    with running_gateway(source, *common) as gateway:
        url = gateway.url.rstrip("/")
        status, headers, body = curl_status("-r", "100-199", f"{url}/f.bin?versionId={v1}")
        assert status == 206 and body == V1[100:200]
        assert headers["etag"] == history.v1["ETag"]
        status, _, body = curl_status("-H", "Accept: application/json", f"{url}/f.bin?versions")
        assert status == 200 and len(json.loads(body)["versions"]) == 3
    when = history.between.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with running_gateway(source, *common, "--as-of", when) as gateway:
        url = gateway.url.rstrip("/")
        status, _, body = curl_status(f"{url}/f.bin")
        assert status == 200 and body == V1
        status, _, body = curl_status("-T", "-", f"{url}/new.txt")
        assert status == 403 and b"as_of" in body

"""Checksums end to end: a PUT's Content-MD5 / Repr-Digest / Content-Digest is verified
while the body streams (a mismatch is 400 and nothing is written, a multipart upload is
aborted), and GET/HEAD send the store's checksum as Repr-Digest (RFC 9530)."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import EngineSettings
from gateway.storage.base import ObjectStore
from gateway.storage.local import LocalStore
from gateway.storage.s3 import S3Store
from tests.apps import app_for
from tests.memorystore import MemoryStore
from tests.servers import moto_settings, s3rver_settings
from tests.webdav.writing import keys, read

MiB = 1024 * 1024
DATA = b"the bytes the client meant to send\n" * 100


@pytest.fixture(params=["memory", "local", "moto", "s3rver"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "local":
        yield LocalStore(tmp_path / "root", create=True)
        return
    if request.param == "moto":
        endpoint, bucket = request.getfixturevalue("moto_bucket")
        settings = moto_settings(endpoint)
    else:
        endpoint, bucket = request.getfixturevalue("s3rver_bucket")
        settings = s3rver_settings(endpoint)
    s3 = await S3Store.create(bucket, settings)
    try:
        yield s3
    finally:
        await s3.close()


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


MD5 = b64(hashlib.md5(DATA).digest())
SHA256 = b64(hashlib.sha256(DATA).digest())
SHA512 = b64(hashlib.sha512(DATA).digest())
WRONG = b64(hashlib.sha256(b"something else").digest())


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-MD5": MD5},
        {"Repr-Digest": f"sha-256=:{SHA256}:"},
        {"Content-Digest": f"sha-512=:{SHA512}:, unixsum=:AAA=:"},
        {"Repr-Digest": f"md5=:{MD5}:", "Content-Digest": f"sha-256=:{SHA256}:"},
    ],
    ids=["content-md5", "repr-sha256", "content-sha512", "both"],
)
async def test_a_put_whose_digest_matches_is_written(
    aiohttp_client: Any, store: ObjectStore, headers: dict[str, str]
) -> None:
    client = await aiohttp_client(app_for(store))
    resp = await client.put("/f.txt", data=DATA, headers=headers)
    assert resp.status == 201, await resp.text()
    assert await read(store, "f.txt") == DATA


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-MD5": b64(hashlib.md5(b"other").digest())},
        {"Repr-Digest": f"sha-256=:{WRONG}:"},
        {"Content-Digest": f"sha-256=:{WRONG}:"},
        {"Content-MD5": MD5, "Repr-Digest": f"sha-256=:{WRONG}:"},
    ],
    ids=["content-md5", "repr-digest", "content-digest", "one-of-two"],
)
async def test_a_put_whose_digest_differs_is_400_and_nothing_is_written(
    aiohttp_client: Any, store: ObjectStore, headers: dict[str, str]
) -> None:
    client = await aiohttp_client(app_for(store))
    resp = await client.put("/f.txt", data=DATA, headers=headers)
    assert resp.status == 400
    assert "nothing was written" in await resp.text()
    assert await keys(store) == set()
    assert (await client.get("/f.txt")).status == 404


@pytest.mark.parametrize(
    "headers",
    [{"Content-MD5": "not base64!"}, {"Content-MD5": b64(b"short")},
     {"Repr-Digest": "sha-256=abc"}, {"Repr-Digest": f"sha-256=:{MD5}:"}],
)
async def test_a_malformed_digest_header_is_400_before_the_body(
    aiohttp_client: Any, headers: dict[str, str]
) -> None:
    store = MemoryStore()
    client = await aiohttp_client(app_for(store))
    resp = await client.put("/f.txt", data=DATA, headers=headers)
    assert resp.status == 400
    assert store.calls["put"] == 0 and store.calls["create_upload"] == 0


async def chunked(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("length", ["announced", "chunked"])
async def test_a_multipart_upload_with_a_wrong_digest_is_aborted(
    aiohttp_client: Any, moto_bucket: tuple[str, str], length: str
) -> None:
    endpoint, bucket = moto_bucket
    s3 = await S3Store.create(bucket, moto_settings(endpoint))
    try:
        engine = EngineSettings(write_part_size=5, part_size=5)
        client = await aiohttp_client(app_for(s3, engine=engine))
        big = bytes(range(256)) * (12 * MiB // 256)
        headers = {"Repr-Digest": f"sha-256=:{WRONG}:"}
        body: Any = io.BytesIO(big) if length == "announced" else chunked(big)
        resp = await client.put("/big.bin", data=body, headers=headers)
        assert resp.status == 400
        assert await keys(s3) == set()
        assert await s3.list_uploads("") == []  # no parts left behind
        right = {"Repr-Digest": f"sha-256=:{b64(hashlib.sha256(big).digest())}:"}
        body = io.BytesIO(big) if length == "announced" else chunked(big)
        assert (await client.put("/big.bin", data=body, headers=right)).status == 201
        assert await read(s3, "big.bin") == big
    finally:
        await s3.close()


# ---- Repr-Digest on the way out -----------------------------------------------------------


async def test_get_and_head_send_the_stored_checksum_as_repr_digest(
    aiohttp_client: Any, moto_bucket: tuple[str, str]
) -> None:
    endpoint, bucket = moto_bucket
    s3 = await S3Store.create(bucket, moto_settings(endpoint, upload_checksums="sha256"))
    try:
        client = await aiohttp_client(app_for(s3, engine=EngineSettings(metadata_ttl=0)))
        assert (await client.put("/f.txt", data=DATA)).status == 201
        want = f"sha-256=:{SHA256}:"
        head = await client.head("/f.txt")
        assert head.headers["Repr-Digest"] == want
        got = await client.get("/f.txt", headers={"Want-Repr-Digest": "sha-256=5"})
        assert got.headers["Repr-Digest"] == want and await got.read() == DATA
        ranged = await client.get("/f.txt", headers={"Range": "bytes=0-3"})
        assert ranged.status == 206 and ranged.headers["Repr-Digest"] == want
        # Wanted only an algorithm the store does not hold: none is sent.
        other = await client.get("/f.txt", headers={"Want-Repr-Digest": "sha-512=9"})
        assert "Repr-Digest" not in other.headers
    finally:
        await s3.close()


async def test_objects_without_a_stored_checksum_get_no_repr_digest(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    local = LocalStore(tmp_path, create=True)
    client = await aiohttp_client(app_for(local))
    assert (await client.put("/f.txt", data=DATA)).status == 201
    assert "Repr-Digest" not in (await client.head("/f.txt")).headers

"""Upload bodies' SHA-256 off the event loop (``prehash``): the signature is botocore's, the
hash sent is the body's, and the loop keeps running while a big body is hashed."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from gateway.storage.checksums import checksum
from gateway.storage.prehash import CONTEXT_KEY, MIN_BYTES, PrehashedS3SigV4Auth, sha256_of
from gateway.storage.s3 import S3Store
from tests.servers import moto_settings
from tests.tcpcount import counting_proxy

MiB = 1024 * 1024


def signed(auth_class: type[S3SigV4Auth], body: bytes, context: dict[str, str]) -> AWSRequest:
    request = AWSRequest("PUT", "http://127.0.0.1:9000/bkt/key?partNumber=1&uploadId=u",
                         data=body, headers={"Content-Length": str(len(body))})
    request.context.update(context)
    request.context["timestamp"] = "20261130T080000Z"
    auth_class(ReadOnlyCredentials("AKID", "secret", None), "s3", "us-east-1").add_auth(request)
    return request


def test_the_signature_is_botocores_with_the_hash_given() -> None:
    body = b"part bytes" * 1000
    digest = hashlib.sha256(body).hexdigest()
    ours = signed(PrehashedS3SigV4Auth, body, {CONTEXT_KEY: digest})
    botocores = signed(S3SigV4Auth, body, {})
    assert ours.headers["X-Amz-Content-SHA256"] == digest
    assert ours.headers["Authorization"] == botocores.headers["Authorization"]
    # Without a hash given it is botocore's signer, hashing itself.
    plain = signed(PrehashedS3SigV4Auth, body, {})
    assert plain.headers["Authorization"] == botocores.headers["Authorization"]


async def test_small_bodies_are_left_to_botocore() -> None:
    assert await sha256_of(b"x" * (MIN_BYTES - 1)) is None
    assert await sha256_of(b"x" * MIN_BYTES) == hashlib.sha256(b"x" * MIN_BYTES).hexdigest()


async def test_a_sha256_upload_checksum_is_reused_not_computed_again() -> None:
    body = b"part bytes" * 1000
    sent = {"ChecksumSHA256": checksum("sha256", body), "ChecksumAlgorithm": "SHA256"}
    assert await sha256_of(body, sent) == hashlib.sha256(body).hexdigest()
    # The checksum given is what counts: the bytes are not hashed a second time.
    assert await sha256_of(b"other bytes" * MIN_BYTES, sent) == hashlib.sha256(body).hexdigest()
    assert await sha256_of(body, {"ChecksumCRC32C": checksum("crc32c", body)}) is None


async def test_the_loop_keeps_running_while_a_big_body_is_hashed() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await sha256_of(bytes(256 * MiB))  # a quarter second of hashing or more
    task.cancel()
    assert ticks - before > 10  # hashed on the loop, the ticker would not have moved


@pytest.mark.parametrize("checksums", [None, "sha256"])
async def test_signed_uploads_send_their_bodys_hash_computed_beforehand(
    moto_bucket: tuple[str, str], monkeypatch: pytest.MonkeyPatch, checksums: str | None,
) -> None:
    """--sign-payload, or --upload-checksums sha256 which turns it on."""
    endpoint, bucket = moto_bucket
    given: list[str] = []  # the hashes the signer took from the context
    payload = PrehashedS3SigV4Auth.payload

    def spy(self: PrehashedS3SigV4Auth, request: Any) -> str:
        if CONTEXT_KEY in request.context:
            given.append(request.context[CONTEXT_KEY])
        return payload(self, request)

    monkeypatch.setattr(PrehashedS3SigV4Auth, "payload", spy)
    whole, part = bytes(range(256)) * (6 * MiB // 256), b"p" * (5 * MiB)
    with counting_proxy(endpoint, record=True) as proxy:
        settings = moto_settings(proxy.url, upload_checksums=checksums,
                                 sign_payload=checksums is None)
        async with S3Store(bucket, settings) as store:
            await store.put("whole", whole)
            upload = await store.create_upload("parted")
            done = await store.upload_part("parted", upload, 1, part)
            await store.complete_upload("parted", upload, [done])
            assert (await store.head("parted")).size == len(part)
    sent = {(method, target.split("?")[0]): headers
            for method, target, headers in proxy.requests() if method == "PUT"}
    assert sent[("PUT", f"/{bucket}/whole")]["x-amz-content-sha256"] == (
        hashlib.sha256(whole).hexdigest())
    assert sent[("PUT", f"/{bucket}/parted")]["x-amz-content-sha256"] == (
        hashlib.sha256(part).hexdigest())
    assert given == [hashlib.sha256(whole).hexdigest(), hashlib.sha256(part).hexdigest()]


async def test_by_default_bodies_go_unsigned_and_nothing_is_hashed(
    moto_bucket: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """UNSIGNED-PAYLOAD over plain http too, as Mountpoint sends it: no SHA-256 of a body is
    taken, neither by prehash nor by botocore's signer."""
    endpoint, bucket = moto_bucket
    hashed: list[int] = []
    real = hashlib.sha256

    def counting(data: bytes = b"", **kw: Any) -> Any:
        if len(data) >= MiB:
            hashed.append(len(data))
        return real(data, **kw)

    monkeypatch.setattr(hashlib, "sha256", counting)
    whole = bytes(range(256)) * (6 * MiB // 256)
    with counting_proxy(endpoint, record=True) as proxy:
        async with S3Store(bucket, moto_settings(proxy.url)) as store:
            await store.put("whole", whole)
            upload = await store.create_upload("parted")
            done = await store.upload_part("parted", upload, 1, whole)
            await store.complete_upload("parted", upload, [done])
            assert (await store.head("parted")).size == len(whole)
            assert (await store.head("whole")).size == len(whole)
    sent = [headers["x-amz-content-sha256"]
            for method, _, headers in proxy.requests() if method == "PUT"]
    assert sent == ["UNSIGNED-PAYLOAD", "UNSIGNED-PAYLOAD"]
    assert hashed == []

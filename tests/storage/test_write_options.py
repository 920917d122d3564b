"""Writes as the bucket's owner wants them (--sse, --sse-kms-key-id, --storage-class,
--requester-pays, --expected-bucket-owner, --user-project, --upload-checksums,
--sign-payload).

The presets decide per provider, purely (refused combinations are one SettingsError
line); against moto, what moto recorded for each object (HEAD through boto3) and the
headers every request of the store carried (a recording proxy between the store and moto,
seeing each request as it goes on the wire, signed: botocore's and the hot path's alike)
show that they are sent.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import crc32c
import pytest

from gateway.engine.budget import MemoryBudget
from gateway.engine.upload import write_stream
from gateway.settings import SettingsError, Source, StoreSettings
from gateway.storage.checksums import checksum, stored_digests
from gateway.storage.presets import resolve
from gateway.storage.s3 import S3Store
from tests.servers import client, create_bucket, moto_settings
from tests.storage.recording import Recorder

MiB = 1024 * 1024
OWNER = "123456789012"  # moto's default account: the owner of every bucket it makes
KEY_ARN = f"arn:aws:kms:us-east-1:{OWNER}:key/0b1c2d3e-0000-4000-8000-000000000001"


def s3(bucket: str = "b") -> Source:
    return Source("s3", bucket)


# ---- refused at startup, one line ------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "settings", "names"),
    [
        (s3(), StoreSettings(sse_kms_key_id="k"), "--sse-kms-key-id needs --sse aws:kms"),
        (s3(), StoreSettings(sse="AES256", sse_kms_key_id="k"), "not AES256"),
        (s3(), StoreSettings(storage_class="COLDISH"), "--storage-class 'COLDISH'"),
        (s3(), StoreSettings(expected_bucket_owner="alice"), "12-digit AWS account id"),
        (s3(), StoreSettings(user_project="p"), "--user-project is for gs://"),
        (Source("r2", "b"), StoreSettings(account_id="a", requester_pays=True),
         "R2 has no requester-pays"),
        (Source("r2", "b"), StoreSettings(account_id="a", expected_bucket_owner=OWNER),
         "R2 does not check a bucket owner"),
        (Source("r2", "b"), StoreSettings(account_id="a", sse="AES256"), "takes no --sse"),
        (Source("r2", "b"), StoreSettings(account_id="a", storage_class="GLACIER"),
         "R2's classes"),
        (Source("gs", "b"), StoreSettings(requester_pays=True), "needs --user-project"),
        (Source("gs", "b"), StoreSettings(expected_bucket_owner=OWNER),
         "GCS does not check a bucket owner"),
        (Source("gs", "b"), StoreSettings(sse="aws:kms"), "takes no --sse"),
        (Source("gs", "b"), StoreSettings(storage_class="STANDARD"), "--storage-class"),
    ],
)
def test_a_combination_the_provider_cannot_honour_is_one_clear_line(
    source: Source, settings: StoreSettings, names: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        resolve(source, settings)
    assert names in str(refused.value)
    assert "\n" not in str(refused.value)


def test_what_each_provider_carries_is_sent_as_its_own_headers() -> None:
    aws = resolve(s3(), StoreSettings(sse="aws:kms:dsse", sse_kms_key_id=KEY_ARN,
                                      storage_class="glacier_ir", requester_pays=True,
                                      expected_bucket_owner=OWNER))
    assert aws.write_params == {"ServerSideEncryption": "aws:kms:dsse",
                                "SSEKMSKeyId": KEY_ARN, "StorageClass": "GLACIER_IR"}
    assert aws.headers == {"x-amz-request-payer": "requester",
                           "x-amz-expected-bucket-owner": OWNER}
    gcs = resolve(Source("gs", "b"), StoreSettings(requester_pays=True, user_project="proj"))
    assert gcs.headers == {"x-goog-user-project": "proj"}
    r2 = resolve(Source("r2", "b"), StoreSettings(account_id="a", storage_class="standard_ia"))
    assert r2.write_params == {"StorageClass": "STANDARD_IA"} and r2.headers == {}
    assert resolve(s3(), StoreSettings()).write_params == {}  # ACL-free, the bucket's own


def test_upload_checksums_default_to_crc32c_on_aws_and_off_elsewhere() -> None:
    aws = resolve(s3(), StoreSettings())
    assert aws.upload_checksum == "crc32c" and aws.full_object_crc and aws.read_checksums
    other = resolve(s3(), StoreSettings(endpoint_url="http://127.0.0.1:9000"))
    assert other.upload_checksum is None and not other.read_checksums
    assert other.config["request_checksum_calculation"] == "when_required"
    for source in (Source("gs", "b"), Source("r2", "b")):
        assert resolve(source, StoreSettings(account_id="a")).upload_checksum is None
    chosen = resolve(s3(), StoreSettings(endpoint_url="http://h:1", upload_checksums="sha256"))
    assert chosen.upload_checksum == "sha256" and not chosen.full_object_crc
    off = resolve(s3(), StoreSettings(upload_checksums="off"))
    assert off.upload_checksum is None
    assert off.config["request_checksum_calculation"] == "when_required"


def test_bodies_are_unsigned_unless_asked_or_a_sha256_is_computed_anyway() -> None:
    def signs(**given: Any) -> bool:
        preset = resolve(s3(), StoreSettings(**given))
        assert preset.config["s3"]["payload_signing_enabled"] is preset.sign_payload
        return preset.sign_payload

    assert not signs() and not signs(endpoint_url="http://h:1")  # Mountpoint's way
    assert not signs(endpoint_url="http://h:1", force_path_style=True, upload_checksums="crc32c")
    assert signs(endpoint_url="http://h:1", sign_payload=True)
    assert signs(upload_checksums="sha256")
    # The path style setting and the payload one share botocore's "s3" config.
    styled = resolve(s3(), StoreSettings(force_path_style=True))
    assert styled.config["s3"] == {"addressing_style": "path", "payload_signing_enabled": False}


def test_checksums_are_s3s_encoding_and_a_composite_one_is_no_digest() -> None:
    assert checksum("crc32c", b"dog") == base64.b64encode(bytes.fromhex("0a72a4df")).decode()
    assert checksum("sha256", b"") == base64.b64encode(hashlib.sha256().digest()).decode()
    answer = {"ChecksumCRC32C": "AAAAAA==", "ChecksumCRC32": "AAAAAA==",
              "ChecksumCRC64NVME": "AAAAAAAAAAA="}
    assert stored_digests(answer, False) == (("crc32c", "AAAAAA=="),)  # no name: skipped
    assert stored_digests({**answer, "ChecksumType": "COMPOSITE"}, False) == ()
    assert stored_digests({"ChecksumSHA256": "abc=-3"}, False) == ()
    assert stored_digests({"ChecksumSHA256": "abc="}, True) == ()
    assert stored_digests({**answer, "ChecksumType": "FULL_OBJECT"}, True) != ()


# ---- against moto: what it recorded, what every request carried ----------------------


@pytest.fixture
async def owned(moto_bucket: tuple[str, str]) -> AsyncIterator[tuple[S3Store, Recorder, str]]:
    endpoint, bucket = moto_bucket
    recorder = await Recorder.start_for(endpoint)
    settings = moto_settings(
        recorder.endpoint, sse="aws:kms", sse_kms_key_id=KEY_ARN, storage_class="STANDARD_IA",
        requester_pays=True, expected_bucket_owner=OWNER, upload_checksums="sha256",
    )
    store = await S3Store.create(bucket, settings)
    try:
        yield store, recorder, endpoint
    finally:
        await store.close()
        await recorder.close()


async def chunks_of(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_every_request_carries_requester_pays_and_the_expected_owner(
    owned: tuple[S3Store, Recorder, str],
) -> None:
    store, recorder, _ = owned
    await store.check()
    await store.put("small.txt", b"hello")
    budget = MemoryBudget(64 * MiB)
    big = bytes(range(256)) * (6 * MiB // 256)
    await write_stream(store, budget, "big.bin", chunks_of(big), part_size=5 * MiB,
                       expected_size=len(big))
    await store.head("small.txt")
    result = await store.get("small.txt", 0, 3)
    await result.aclose()
    await store.list_page("")
    await store.copy("small.txt", "copy.txt")
    upload_id = await store.create_upload("left.bin")
    await store.list_uploads("")
    await store.abort_upload("left.bin", upload_id)
    await store.delete("copy.txt")
    await store.delete_many(["small.txt"])
    assert recorder.operations() >= {
        "HeadBucket", "PutObject", "CreateMultipartUpload", "UploadPart",
        "CompleteMultipartUpload", "HeadObject", "GetObject", "ListObjectsV2", "CopyObject",
        "ListMultipartUploads", "AbortMultipartUpload", "DeleteObject", "DeleteObjects",
    }
    for operation, headers in recorder.requests:
        assert headers.get("x-amz-request-payer") == "requester", operation
        assert headers.get("x-amz-expected-bucket-owner") == OWNER, operation
        assert "x-amz-request-payer" in headers.get("authorization", ""), operation  # signed
    copies = [h for op, h in recorder.requests if op == "CopyObject"]
    assert copies and all(h["x-amz-source-expected-bucket-owner"] == OWNER for h in copies)


async def test_moto_records_encryption_class_and_checksum_of_every_new_object(
    owned: tuple[S3Store, Recorder, str],
) -> None:
    store, recorder, endpoint = owned
    data = b"encrypted at rest"
    written = await store.put("one.txt", data)
    big = b"x" * (6 * MiB)
    await write_stream(store, MemoryBudget(64 * MiB), "two.bin", chunks_of(big),
                       part_size=5 * MiB, expected_size=len(big))
    await store.copy("one.txt", "three.txt")
    boto = client(endpoint)
    for key in ("one.txt", "two.bin", "three.txt"):
        head = boto.head_object(Bucket=store.bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"] == KEY_ARN, key
        assert head["StorageClass"] == "STANDARD_IA", key
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    head = boto.head_object(Bucket=store.bucket, Key="one.txt", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == sha
    assert written.digests == (("sha-256", sha),)
    assert (await store.head("one.txt")).digests == (("sha-256", sha),)
    # Each part went with its own checksum, named again on completion.
    parts = [h for op, h in recorder.requests if op == "UploadPart"]
    assert len(parts) == 2 and all("x-amz-checksum-sha256" in h for h in parts)
    assert all("x-amz-trailer" not in h for _, h in recorder.requests)
    # No ACL is ever sent: the bucket's owner decides access.
    assert all(not any(k.startswith(("x-amz-acl", "x-amz-grant")) for k in h)
               for _, h in recorder.requests)


async def test_aes256_dsse_and_a_crc32c_upload_on_moto(moto_server: str) -> None:
    for sse in ("AES256", "aws:kms:dsse"):
        bucket = create_bucket(moto_server)
        store = await S3Store.create(bucket, moto_settings(
            moto_server, sse=sse, upload_checksums="crc32c"))
        try:
            info = await store.put("k", b"dog")
        finally:
            await store.close()
        head = client(moto_server).head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
        assert head["ServerSideEncryption"] == sse
        crc = base64.b64encode(crc32c.crc32c(b"dog").to_bytes(4, "big")).decode()
        assert head["ChecksumCRC32C"] == crc and info.digests == (("crc32c", crc),)


async def test_a_crc32c_multipart_upload_is_one_full_object_crc_and_copies_keep_theirs(
    moto_server: str,
) -> None:
    """AWS's default: the parts' CRC32Cs combine into one CRC32C of the whole object
    (ChecksumType FULL_OBJECT); a copy in parts carries each part's checksum too."""
    bucket = create_bucket(moto_server)
    recorder = await Recorder.start_for(moto_server)
    store = await S3Store.create(bucket, moto_settings(recorder.endpoint,
                                                       upload_checksums="crc32c"))
    store.preset = dataclasses.replace(store.preset, full_object_crc=True)  # as on AWS
    store.multipart_copy_threshold = store.copy_part_size = 5 * MiB
    big = bytes(range(256)) * (11 * MiB // 256)
    try:
        await write_stream(store, MemoryBudget(64 * MiB), "big.bin", chunks_of(big),
                           part_size=5 * MiB, expected_size=len(big))
        await store.copy("big.bin", "copy.bin")
    finally:
        await store.close()
        await recorder.close()
    creates = [h for op, h in recorder.requests if op == "CreateMultipartUpload"]
    assert creates and all(h["x-amz-checksum-type"] == "FULL_OBJECT" for h in creates)
    whole = base64.b64encode(crc32c.crc32c(big).to_bytes(4, "big")).decode()
    for key in ("big.bin", "copy.bin"):
        got = client(moto_server).get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert got["Body"].read() == big
        assert got["ChecksumCRC32C"] == whole and got["ChecksumType"] == "FULL_OBJECT", key


async def test_gcs_requester_pays_sends_the_billed_project_on_every_request(
    moto_bucket: tuple[str, str],
) -> None:
    """gs:// through its XML API: requester pays is ``x-goog-user-project`` (moto stands in
    for GCS's endpoint; what matters is what goes on the wire, signed)."""
    endpoint, bucket = moto_bucket
    recorder = await Recorder.start_for(endpoint)
    settings = StoreSettings(endpoint_url=recorder.endpoint, force_path_style=True,
                             requester_pays=True, user_project="billing-proj")
    store = await S3Store.create(bucket, settings, "gs")
    try:
        await store.check()
        await store.put("a.txt", b"x")
        await store.head("a.txt")
        await store.list_page("")
        await store.delete("a.txt")
    finally:
        await store.close()
        await recorder.close()
    assert recorder.operations() == {"HeadBucket", "PutObject", "HeadObject", "ListObjectsV2",
                                     "DeleteObject"}
    for operation, headers in recorder.requests:
        assert headers.get("x-goog-user-project") == "billing-proj", operation
        assert "x-goog-user-project" in headers["authorization"], operation
        assert "x-amz-request-payer" not in headers, operation

"""An S3-compatible bucket as an object store, through one long-lived aiobotocore client.

Every botocore/aiohttp failure is translated into ``gateway.errors`` exactly once, by
``translating`` (``s3errors.py``, a table of S3 error codes), at the edge of each method;
the client is made from the provider's preset (``presets.py``). GetObject, HeadObject and
ListObjectsV2 skip botocore's pipeline (``s3fast.HotPath``, same answers). Reads stream.

Defensive checks for S3-compatibles laxer than S3 (all seen in s3rver): ``If-Match`` on
GET is also verified against the answer's ETag, a create-only write (``If-None-Match: *``
on PutObject, CompleteMultipartUpload and CopyObject) is preceded by a HEAD unless the
provider is known to enforce the header there (s3rver ignores it on all three, moto on
CopyObject), and a ranged answer is trusted only as far as its ``Content-Range`` total
allows. The header is always sent, so a store that enforces it closes the window the HEAD
leaves between processes; inside one process the engine's write guard closes it.

Writes carry the share's write options (``Preset.write_params``: SSE, KMS key, storage
class) on every request that makes an object, and, with ``--upload-checksums``, a checksum
of each body and part computed here, so the store refuses bytes changed on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from botocore import exceptions as boto

from gateway.errors import AccessDenied, Exists, GatewayError, NotFound, ObjectChanged, Unavailable
from gateway.settings import Scheme, Source, StoreSettings
from gateway.storage import prehash
from gateway.storage.base import GetResult, ListPage, ObjectInfo, UploadPart
from gateway.storage.checksums import PARAMS, checksum_async, stored_digests
from gateway.storage.mtime import META_KEY, format_mtime, parse_mtime, with_mtime
from gateway.storage.presets import Preset, open_client, resolve
from gateway.storage.s3body import Body, empty, response_date, total_from_content_range, utc
from gateway.storage.s3errors import error_code, error_status, not_implemented, translating
from gateway.storage.s3fast import HotPath
from gateway.storage.s3list import Lister
from gateway.storage.s3versions import S3Versions

CHUNK = 1024 * 1024  # a body read: a whole block, so a block is one piece downstream
MiB = 1024 * 1024
GiB = 1024 * MiB
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys

def _multipart(response: dict[str, Any]) -> bool:
    """The object was made by a multipart upload: S3 gives it an ETag ending in ``-N``."""
    return "-" in str(response.get("ETag", ""))


class S3Store(S3Versions):
    """One bucket of an S3-compatible store. Open with ``await S3Store.create(...)``."""

    multipart_copy_threshold = 5 * GiB  # CopyObject's limit; larger copies go in parts
    copy_part_size = 512 * MiB  # grown when needed to stay within 10,000 parts
    copy_concurrency = 8

    def __init__(
        self,
        bucket: str,
        settings: StoreSettings | None = None,
        scheme: Scheme = "s3",
    ) -> None:
        self.bucket = bucket
        self.settings = settings or StoreSettings()
        self.scheme = scheme
        self.preset: Preset = resolve(Source(scheme, bucket), self.settings)
        self._conditional_writes = self.preset.conditional_writes
        # If-None-Match on CompleteMultipartUpload and CopyObject came later than on
        # PutObject and is less widely honoured: trusted on AWS itself only.
        self._conditional_commits = self._conditional_writes and self.preset.endpoint_url is None
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._fast: HotPath | None = None
        self._lister: Lister | None = None

    @classmethod
    async def create(
        cls,
        bucket: str,
        settings: StoreSettings | None = None,
        scheme: Scheme = "s3",
    ) -> S3Store:
        store = cls(bucket, settings, scheme)
        await store.open()
        return store

    async def open(self) -> None:
        """Create the client (and its connection pool). Does not talk to the store."""
        if self._client is not None:
            return
        self._client, self._stack = await open_client(self.preset, self.settings.profile)
        if self.preset.sign_payload:
            prehash.register(self._client)
        self._fast = HotPath(self._client, self.preset, self.bucket)
        self._lister = Lister(self.bucket, self._client, self._fast)

    async def close(self) -> None:
        stack, self._stack, self._client, self._fast = self._stack, None, None, None
        if self._lister is not None:
            self._lister.close()
        self._lister = None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> S3Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def description(self) -> str:
        return f"{self.scheme}://{self.bucket} at {self.preset.where}"

    @property
    def _name(self) -> str:
        """How request-level messages name the store (no endpoint: clients see them)."""
        return f"{self.scheme}://{self.bucket}"

    @property
    def _s3(self) -> Any:
        if self._client is None:
            raise RuntimeError(f"{self.description} is not open (await open() first)")
        return self._client

    @property
    def _hot(self) -> Any:
        return self._fast or self._s3

    def _errors(
        self, op: str, key: str | None = None, where: str | None = None
    ) -> contextlib.AbstractContextManager[None]:
        return translating(op, bucket=self.bucket, where=where or self._name, key=key)

    def _info(self, key: str, response: dict[str, Any], size: int) -> ObjectInfo:
        info = ObjectInfo(
            key=key,
            size=size,
            etag=str(response.get("ETag", "")),
            last_modified=utc(response.get("LastModified")),
            content_type=response.get("ContentType"),
            digests=stored_digests(response, _multipart(response)),
        )
        return with_mtime(info, parse_mtime(response.get("Metadata", {}).get(META_KEY)))

    def _write_params(self, key: str, content_type: str | None, mtime: float | None
                      ) -> dict[str, Any]:
        """What PutObject and CreateMultipartUpload both send for a new object."""
        kind = {"ContentType": content_type} if content_type else {}
        meta = {"Metadata": {META_KEY: format_mtime(mtime)}} if mtime is not None else {}
        return {"Bucket": self.bucket, "Key": key, **self.preset.write_params, **kind, **meta}

    async def _sha256(self, data: bytes, sent: dict[str, str]) -> str | None:
        """The body's SHA-256 for the signature, off the loop, if botocore would hash it."""
        return await prehash.sha256_of(data, sent) if self.preset.sign_payload else None

    async def _checksum(self, data: bytes) -> dict[str, str]:
        """The checksum parameter for a body (PutObject, UploadPart), if uploads carry one."""
        algorithm = self.preset.upload_checksum
        if algorithm is None:
            return {}
        member, name, _ = PARAMS[algorithm]
        # The algorithm named too: botocore then sends this value instead of its own, and
        # stores that key on it by x-amz-sdk-checksum-algorithm (moto) keep it.
        return {member: await checksum_async(algorithm, data), "ChecksumAlgorithm": name}

    # ---- protocol -----------------------------------------------------------------
    async def check(self) -> None:
        with self._errors("check", where=self.description):
            try:
                await self._s3.head_bucket(Bucket=self.bucket)
            except boto.ClientError as e:
                status, code = error_status(e), error_code(e)
                if status == 404 or code == "NoSuchBucket":
                    raise NotFound(
                        f"bucket {self.bucket!r} does not exist at {self.preset.where}"
                    ) from e
                if status == 403:
                    raise AccessDenied(
                        f"{self.description} refused the gateway's credentials "
                        f"(HeadBucket answered 403 {code})"
                    ) from e
                raise

    async def _head(
        self, key: str, if_match: str | None = None, version_id: str | None = None
    ) -> ObjectInfo:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if if_match is not None:
            params["IfMatch"] = if_match
        params.update({"VersionId": version_id} if version_id is not None else {})
        if self.preset.read_checksums:
            params["ChecksumMode"] = "ENABLED"
        op = "head" if if_match is None else "get"
        with self._errors(op, key):
            response = await self._hot.head_object(**params)
        info = self._info(key, response, int(response.get("ContentLength", 0)))
        if if_match is not None and info.etag != if_match:
            raise ObjectChanged(f"{key!r} changed")  # the store ignored If-Match
        return info

    async def head(self, key: str) -> ObjectInfo:
        return await self._head(key)

    async def get(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        if_match: str | None = None,
        *, version_id: str | None = None,  # a version's: S3Versions.get_version
    ) -> GetResult:
        lo = max(0, start or 0)
        ranged = start is not None or end is not None
        if end is not None and end <= lo:
            info = await self._head(key, if_match, version_id)
            lo = min(lo, info.size)
            return GetResult(info, lo, lo, empty())
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if ranged:
            params["Range"] = f"bytes={lo}-" if end is None else f"bytes={lo}-{end - 1}"
        if if_match is not None:
            params["IfMatch"] = if_match
        params.update({"VersionId": version_id} if version_id is not None else {})
        with self._errors("get", key):
            try:
                response = await self._hot.get_object(**params)
            except boto.ClientError as e:
                if error_code(e) != "InvalidRange":
                    raise
                response = None
        if response is None:
            # 416: the range starts at or after the end, or the object is empty.
            info = await self._head(key, if_match, version_id)
            lo = min(lo, info.size)
            return GetResult(info, lo, lo, empty())

        body = response["Body"]
        total = total_from_content_range(response.get("ContentRange"))
        # No Content-Range: the whole object came back (no range asked, or it was ignored).
        skip = lo if total is None else 0
        size = total if total is not None else int(response.get("ContentLength", 0))
        info = self._info(key, response, size)
        if if_match is not None and info.etag != if_match:
            await body.aclose()  # the store ignored If-Match
            raise ObjectChanged(f"{key!r} changed")
        lo = min(lo, size)
        hi = size if end is None else min(end, size)
        if hi <= lo:
            await body.aclose()
            return GetResult(info, lo, lo, empty())
        return GetResult(info, lo, hi, self._stream(key, body, skip, hi - lo), body.aclose)

    async def _stream(self, key: str, body: Any, skip: int, length: int) -> AsyncIterator[bytes]:
        """Yield exactly ``length`` bytes after ``skip``; a short body is an error."""
        try:
            with self._errors("get", key):
                while skip > 0:
                    dropped = await body.read(min(CHUNK, skip))
                    if not dropped:
                        break
                    skip -= len(dropped)
                left = length
                while left > 0:
                    chunk = await body.read(min(CHUNK, left))
                    if not chunk:
                        raise Unavailable(f"{self._name}: {key!r} ended {left} bytes early")
                    left -= len(chunk)
                    yield chunk
        finally:
            await body.aclose()

    async def list_page(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        if self._lister is None:
            raise RuntimeError(f"{self.description} is not open (await open() first)")
        with self._errors("list", prefix):
            return await self._lister.page(prefix, delimiter, token, max_keys)

    async def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        if_none_match: bool = False,
        mtime: float | None = None,
    ) -> ObjectInfo:
        params = self._write_params(key, content_type, mtime)
        sent = await self._checksum(data)
        params.update(sent)
        digest = await self._sha256(data, sent)
        if if_none_match:
            params["IfNoneMatch"] = "*"
            if not self._conditional_writes:
                # Not every S3-compatible enforces If-None-Match (s3rver ignores it, some
                # older MinIO/Ceph too), so look first (see the module's docstring).
                await self._refuse_existing(key)
        with self._errors("put", key):
            try:
                response = await self._s3.put_object(**params, Body=Body(data, digest))
            except boto.ClientError as e:
                if not (if_none_match and not_implemented(e)):
                    raise
                self._conditional_writes = False  # this store refuses the header: HEAD only
                del params["IfNoneMatch"]
                response = await self._s3.put_object(**params, Body=Body(data, digest))
        return with_mtime(ObjectInfo(
            key=key,
            size=len(data),
            etag=str(response.get("ETag", "")),
            last_modified=response_date(response),
            content_type=content_type,
            digests=stored_digests(sent, False),  # verified by the store, which keeps it
        ), mtime)

    async def _refuse_existing(self, key: str) -> None:
        """Exists if ``key`` is there now (a store that may ignore If-None-Match)."""
        with contextlib.suppress(NotFound):
            await self._head(key)
            raise Exists(f"{key!r} already exists")

    async def create_upload(
        self, key: str, content_type: str | None = None, mtime: float | None = None
    ) -> str:
        params = self._write_params(key, content_type, mtime)
        algorithm = self.preset.upload_checksum
        if algorithm is not None:
            params["ChecksumAlgorithm"] = PARAMS[algorithm][1]
            if self.preset.full_object_crc:
                params["ChecksumType"] = "FULL_OBJECT"
        with self._errors("create_upload", key):
            response = await self._s3.create_multipart_upload(**params)
        return str(response["UploadId"])

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> UploadPart:
        sent = await self._checksum(data)
        digest = await self._sha256(data, sent)
        with self._errors("upload_part", key):
            response = await self._s3.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                Body=Body(data, digest), **sent,
            )
        algorithm = self.preset.upload_checksum
        value = sent[PARAMS[algorithm][0]] if algorithm is not None else None
        return UploadPart(number, str(response["ETag"]), value)

    def _part(self, part: UploadPart) -> dict[str, Any]:
        entry: dict[str, Any] = {"PartNumber": part.number, "ETag": part.etag}
        algorithm = self.preset.upload_checksum
        if algorithm is not None and part.checksum is not None:
            entry[PARAMS[algorithm][0]] = part.checksum
        return entry

    async def complete_upload(
        self, key: str, upload_id: str, parts: list[UploadPart], if_none_match: bool = False
    ) -> ObjectInfo:
        ordered = [self._part(p) for p in sorted(parts, key=lambda p: p.number)]
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "UploadId": upload_id,
            "MultipartUpload": {"Parts": ordered},
        }
        if if_none_match:
            params["IfNoneMatch"] = "*"
            if not self._conditional_commits:
                await self._refuse_existing(key)
        with self._errors("complete_upload", key):
            try:
                await self._s3.complete_multipart_upload(**params)
            except boto.ClientError as e:
                if not (if_none_match and not_implemented(e)):
                    raise
                self._conditional_commits = False  # refused: the HEAD above from now on
                await self._refuse_existing(key)
                del params["IfNoneMatch"]
                await self._s3.complete_multipart_upload(**params)
        # The answer carries no size or date: ask once, now that the object exists.
        return await self._head(key)

    async def abort_upload(self, key: str, upload_id: str) -> None:
        with self._errors("abort_upload", key):
            await self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    async def list_uploads(self, prefix: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        with self._errors("list_uploads", prefix):
            paginator = self._s3.get_paginator("list_multipart_uploads")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                found.extend((u["Key"], u["UploadId"]) for u in page.get("Uploads", ()))
        return found

    async def copy(self, src: str, dst: str, if_none_match: bool = False) -> ObjectInfo:
        source = await self._head(src)
        if if_none_match:
            # Looked at on AWS too: CopyObject's If-None-Match is the newest condition.
            await self._refuse_existing(dst)
        if source.size > self.multipart_copy_threshold:
            return await self._copy_in_parts(source, dst, if_none_match)
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": dst,
            "CopySource": {"Bucket": self.bucket, "Key": src},
            "CopySourceIfMatch": source.etag,  # the size we report is this version's
            **self.preset.write_params,
        }
        if if_none_match:
            params["IfNoneMatch"] = "*"
        try:
            with self._errors("copy", src):
                try:
                    response = await self._s3.copy_object(**params)
                except boto.ClientError as e:
                    if not (if_none_match and not_implemented(e)):
                        raise
                    del params["IfNoneMatch"]  # refused: the HEAD above has looked
                    response = await self._s3.copy_object(**params)
        except ObjectChanged:
            # One 412 for two conditions: the source changed, or the target exists now.
            if if_none_match:
                await self._refuse_existing(dst)
            raise
        result = response.get("CopyObjectResult", {})
        # CopyObject keeps the user metadata, so the copy has the source's mtime.
        return with_mtime(ObjectInfo(
            key=dst,
            size=source.size,
            etag=str(result.get("ETag", "")),
            last_modified=utc(result.get("LastModified")),
            content_type=source.content_type,
        ), source.mtime)

    async def _copy_in_parts(self, source: ObjectInfo, dst: str, if_none_match: bool
                             ) -> ObjectInfo:
        """UploadPartCopy for objects past CopyObject's 5 GiB limit."""
        part_size = max(self.copy_part_size, -(-source.size // 10_000))
        upload_id = await self.create_upload(dst, source.content_type, source.mtime)
        limit = asyncio.Semaphore(self.copy_concurrency)

        async def part(number: int, first: int) -> UploadPart:
            last = min(first + part_size, source.size) - 1
            async with limit:
                with self._errors("copy", source.key):
                    response = await self._s3.upload_part_copy(
                        Bucket=self.bucket,
                        Key=dst,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource={"Bucket": self.bucket, "Key": source.key},
                        CopySourceRange=f"bytes={first}-{last}",
                        CopySourceIfMatch=source.etag,
                    )
            result = response["CopyPartResult"]
            algorithm = self.preset.upload_checksum
            member = PARAMS[algorithm][0] if algorithm is not None else ""
            return UploadPart(number, str(result["ETag"]), result.get(member))

        tasks = [
            asyncio.ensure_future(part(i + 1, first))
            for i, first in enumerate(range(0, source.size, part_size))
        ]
        try:
            parts = await asyncio.gather(*tasks)
            return await self.complete_upload(dst, upload_id, list(parts), if_none_match)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(GatewayError):
                await asyncio.shield(self.abort_upload(dst, upload_id))
            raise

    async def delete(self, key: str) -> None:
        with self._errors("delete", key):
            await self._s3.delete_object(Bucket=self.bucket, Key=key)

    async def delete_many(self, keys: list[str]) -> dict[str, str]:
        failed: dict[str, str] = {}
        for i in range(0, len(keys), DELETE_BATCH):
            batch = keys[i : i + DELETE_BATCH]
            with self._errors("delete_many"):
                response = await self._s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            for error in response.get("Errors", ()):
                code, message = error.get("Code", "error"), error.get("Message", "")
                failed[error["Key"]] = f"{code}: {message}" if message else str(code)
        return failed

"""An in-memory store for unit tests: counts calls and injects faults.

It behaves like S3 where the layers above can tell: lexicographic listings with common
prefixes and continuation tokens, quoted MD5 etags, If-Match on reads, multipart uploads
that are invisible until completed.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.errors import Exists, GatewayError, NotFound, ObjectChanged
from gateway.storage.base import GetResult, ListPage, ObjectInfo, UploadPart
from gateway.storage.mtime import with_mtime
from gateway.storage.noversions import NoVersions

CHUNK = 64 * 1024


@dataclass
class _Stored:
    data: bytes
    info: ObjectInfo  # as HEAD sees it (with its mtime)
    listed: ObjectInfo | None = None  # as a listing sees it, when that differs (no mtime)


@dataclass
class _Fault:
    error: GatewayError
    remaining: int
    key: str | None
    after_bytes: int | None  # for get: fail mid-stream after this many bytes


@dataclass
class MemoryStore(NoVersions):  # like a local folder, one version of each key
    name: str = "memory"
    objects: dict[str, _Stored] = field(default_factory=dict)
    uploads: dict[str, tuple[str, str | None, dict[int, bytes]]] = field(default_factory=dict)
    upload_mtimes: dict[str, float] = field(default_factory=dict)  # given at create_upload
    calls: Counter[str] = field(default_factory=Counter)
    get_ranges: list[tuple[str, int, int, str | None]] = field(default_factory=list)
    bytes_served: int = 0
    list_page_size: int = 1000  # most keys a listing page returns, as S3 may return fewer
    # A body's pieces come one turn of the event loop apart, as from a network, rather
    # than all at once.
    paced: bool = False
    _faults: dict[str, list[_Fault]] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return f"memory://{self.name}"

    # ---- test helpers -------------------------------------------------------------
    def fail(
        self,
        op: str,
        error: GatewayError,
        times: int = 1,
        key: str | None = None,
        after_bytes: int | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``op`` (on ``key`` if given) raise ``error``."""
        self._faults.setdefault(op, []).append(_Fault(error, times, key, after_bytes))

    def _take_fault(self, op: str, key: str | None) -> _Fault | None:
        for fault in self._faults.get(op, []):
            if fault.remaining > 0 and (fault.key is None or fault.key == key):
                fault.remaining -= 1
                return fault
        return None

    def _enter(self, op: str, key: str | None = None) -> _Fault | None:
        self.calls[op] += 1
        fault = self._take_fault(op, key)
        if fault is not None and fault.after_bytes is None:
            raise fault.error
        return fault

    def put_sync(self, key: str, data: bytes, content_type: str | None = None,
                 mtime: float | None = None) -> ObjectInfo:
        info = ObjectInfo(
            key=key,
            size=len(data),
            etag='"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"',
            last_modified=datetime.now(UTC).replace(microsecond=0),
            content_type=content_type,
        )
        # Like S3: user metadata (the mtime) comes with HEAD and GET, never with a listing.
        shown = with_mtime(info, mtime)
        self.objects[key] = _Stored(bytes(data), shown, info if mtime is not None else None)
        return shown

    # ---- protocol -----------------------------------------------------------------
    async def check(self) -> None:
        self._enter("check")

    async def head(self, key: str) -> ObjectInfo:
        self._enter("head", key)
        stored = self.objects.get(key)
        if stored is None:
            raise NotFound(f"no object {key!r}")
        return stored.info

    async def get(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        if_match: str | None = None,
    ) -> GetResult:
        fault = self._enter("get", key)
        stored = self.objects.get(key)
        if stored is None:
            raise NotFound(f"no object {key!r}")
        if if_match is not None and if_match != stored.info.etag:
            raise ObjectChanged(f"{key!r} changed")
        size = stored.info.size
        lo = 0 if start is None else min(start, size)
        hi = size if end is None else min(end, size)
        self.get_ranges.append((key, lo, hi, if_match))
        data = stored.data[lo:hi]

        limit = fault.after_bytes if fault is not None else None

        async def body() -> AsyncIterator[bytes]:
            sent = 0
            for i in range(0, len(data), CHUNK):
                piece = data[i : i + CHUNK]
                if fault is not None and limit is not None and sent + len(piece) > limit:
                    raise fault.error
                sent += len(piece)
                self.bytes_served += len(piece)
                yield piece
                if self.paced:
                    await asyncio.sleep(0)

        return GetResult(stored.info, lo, hi, body())

    async def list_page(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        self._enter("list", prefix)
        max_keys = min(max_keys, self.list_page_size)
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        last: str | None = None
        for key in sorted(self.objects):
            if not key.startswith(prefix) or (token is not None and key <= token):
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if prefixes and prefixes[-1] == common:
                    continue
                if token is not None and common <= token:
                    continue
                if len(objects) + len(prefixes) >= max_keys:
                    return ListPage(tuple(objects), tuple(prefixes), last)
                prefixes.append(common)
                last = common + "\U0010ffff"  # skip every key under this prefix
            else:
                if len(objects) + len(prefixes) >= max_keys:
                    return ListPage(tuple(objects), tuple(prefixes), last)
                stored = self.objects[key]
                objects.append(stored.listed or stored.info)
                last = key
        return ListPage(tuple(objects), tuple(prefixes), None)

    async def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        if_none_match: bool = False,
        mtime: float | None = None,
    ) -> ObjectInfo:
        self._enter("put", key)
        if if_none_match and key in self.objects:
            raise Exists(f"{key!r} exists")
        return self.put_sync(key, data, content_type, mtime)

    async def create_upload(
        self, key: str, content_type: str | None = None, mtime: float | None = None
    ) -> str:
        self._enter("create_upload", key)
        upload_id = uuid.uuid4().hex
        self.uploads[upload_id] = (key, content_type, {})
        if mtime is not None:
            self.upload_mtimes[upload_id] = mtime
        return upload_id

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> UploadPart:
        self._enter("upload_part", key)
        if upload_id not in self.uploads:
            raise NotFound(f"no upload {upload_id}")
        self.uploads[upload_id][2][number] = bytes(data)
        etag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
        return UploadPart(number, etag)

    async def complete_upload(
        self, key: str, upload_id: str, parts: list[UploadPart], if_none_match: bool = False
    ) -> ObjectInfo:
        self._enter("complete_upload", key)
        if upload_id not in self.uploads:
            raise NotFound(f"no upload {upload_id}")
        if if_none_match and key in self.objects:
            raise Exists(f"{key!r} exists")  # the upload stays open, as on S3
        _, content_type, stored = self.uploads.pop(upload_id)
        data = b"".join(stored[p.number] for p in sorted(parts, key=lambda p: p.number))
        return self.put_sync(key, data, content_type, self.upload_mtimes.pop(upload_id, None))

    async def abort_upload(self, key: str, upload_id: str) -> None:
        self._enter("abort_upload", key)
        self.uploads.pop(upload_id, None)
        self.upload_mtimes.pop(upload_id, None)

    async def list_uploads(self, prefix: str) -> list[tuple[str, str]]:
        self._enter("list_uploads", prefix)
        return [(k, u) for u, (k, _, _) in self.uploads.items() if k.startswith(prefix)]

    async def copy(self, src: str, dst: str, if_none_match: bool = False) -> ObjectInfo:
        self._enter("copy", src)
        stored = self.objects.get(src)
        if stored is None:
            raise NotFound(f"no object {src!r}")
        if if_none_match and dst in self.objects:
            raise Exists(f"{dst!r} exists")
        return self.put_sync(dst, stored.data, stored.info.content_type, stored.info.mtime)

    async def delete(self, key: str) -> None:
        self._enter("delete", key)
        self.objects.pop(key, None)

    async def delete_many(self, keys: list[str]) -> dict[str, str]:
        self._enter("delete_many")
        failed: dict[str, str] = {}
        for key in keys:
            fault = self._take_fault("delete_one", key)
            if fault is not None:
                failed[key] = fault.error.message
            else:
                self.objects.pop(key, None)
        return failed

    async def close(self) -> None:
        self.calls["close"] += 1

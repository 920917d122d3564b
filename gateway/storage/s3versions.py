"""ListObjectVersions for ``S3Store``: the request's parameters and the page it answers."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from gateway.storage.base import GetResult, ObjectInfo, ObjectVersion, VersionPage
from gateway.storage.s3body import utc


def versions_params(
    bucket: str, prefix: str, delimiter: str | None, token: str | None, max_keys: int
) -> dict[str, Any]:
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": max_keys}
    if delimiter:
        params["Delimiter"] = delimiter
    if token:  # ours: the store's two markers
        key_marker, version_marker = json.loads(token)
        params["KeyMarker"] = key_marker
        if version_marker:
            params["VersionIdMarker"] = version_marker
    return params


def _version(item: dict[str, Any], deleted: bool) -> ObjectVersion:
    return ObjectVersion(
        key=item["Key"],
        version_id=str(item.get("VersionId") or "null"),  # "null": written before versioning
        last_modified=utc(item.get("LastModified")),
        is_latest=bool(item.get("IsLatest")),
        deleted=deleted,
        size=0 if deleted else int(item.get("Size", 0)),
        etag="" if deleted else str(item.get("ETag", "")),
    )


def version_page(response: dict[str, Any]) -> VersionPage:
    found = [_version(item, False) for item in response.get("Versions", ())]
    found += [_version(item, True) for item in response.get("DeleteMarkers", ())]
    # Versions and delete markers come as two lists: merged by key, each key's newest
    # first (the latest first among equal dates, as dates may have whole seconds only).
    found.sort(key=lambda v: (v.key, -v.last_modified.timestamp(), not v.is_latest))
    prefixes = tuple(p["Prefix"] for p in response.get("CommonPrefixes", ()))
    token = None
    if response.get("IsTruncated"):
        token = json.dumps([response.get("NextKeyMarker") or "",
                            response.get("NextVersionIdMarker") or ""])
    return VersionPage(tuple(found), prefixes, token)


class S3Versions:
    """The version methods of ``S3Store``: each request names the version."""

    bucket: str

    if TYPE_CHECKING:
        @property
        def _s3(self) -> Any: ...

        def _errors(self, op: str, key: str | None = None, where: str | None = None
                    ) -> contextlib.AbstractContextManager[None]: ...

        async def _head(self, key: str, if_match: str | None = None,
                        version_id: str | None = None) -> ObjectInfo: ...

        async def get(self, key: str, start: int | None = None, end: int | None = None,
                      if_match: str | None = None, *, version_id: str | None = None
                      ) -> GetResult: ...

    async def head_version(self, key: str, version_id: str) -> ObjectInfo:
        return await self._head(key, version_id=version_id)

    async def get_version(
        self,
        key: str,
        version_id: str,
        start: int | None = None,
        end: int | None = None,
        if_match: str | None = None,
    ) -> GetResult:
        return await self.get(key, start, end, if_match, version_id=version_id)

    async def list_versions(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> VersionPage:
        params = versions_params(self.bucket, prefix, delimiter, token, max_keys)
        with self._errors("list_versions", prefix):
            return version_page(await self._s3.list_object_versions(**params))

"""Object stores behind one narrow protocol: S3 (aiobotocore), a local folder, memory."""

from __future__ import annotations

from gateway.storage.base import GetResult, ListPage, ObjectInfo, ObjectStore, UploadPart

__all__ = ["GetResult", "ListPage", "ObjectInfo", "ObjectStore", "UploadPart"]

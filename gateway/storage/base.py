"""The ObjectStore protocol: the only thing the layers above know about a store.

Keys are full object keys (the share's prefix included). Ranges are half-open
``[start, end)`` byte offsets. Every implementation translates its own failures into
``gateway.errors`` exactly once, here at the edge.

The three ways to make an object visible (``put``, ``complete_upload``, ``copy``) take
``if_none_match``: create only, refuse with ``Exists`` if the key is there. A store enforces
it itself where it can (atomic across processes); where it cannot it looks first, which is
safe only under the engine's write guard (``gateway.engine.guard``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # quoted, exactly as the store gives it: '"abc123"'
    # Timezone-aware UTC, whole seconds: the stored modification time (``mtime``) when
    # the object has one, else the store's own LastModified.
    last_modified: datetime
    content_type: str | None = None
    # Whole-object checksums the store holds, as RFC 9530 names them (``checksums.py``):
    # ``(("sha-256", "<base64>"),)``. Known from a HEAD or a write, not from a listing.
    digests: tuple[tuple[str, str], ...] = ()
    # The modification time a client gave at creation (X-OC-Mtime, PROPPATCH), seconds
    # since the epoch, kept as S3 ``x-amz-meta-mtime`` (rclone's convention); None when the
    # object has none or the store keeps no such field (a local file's time is its mtime).
    mtime: float | None = None


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a delimited listing: objects and common prefixes, each sorted."""

    objects: tuple[ObjectInfo, ...]
    prefixes: tuple[str, ...]
    next_token: str | None


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One version of a key, or a delete marker (``deleted``: no size, no etag)."""

    key: str
    version_id: str
    last_modified: datetime  # timezone-aware UTC
    is_latest: bool
    deleted: bool = False
    size: int = 0
    etag: str = ""


@dataclass(frozen=True, slots=True)
class VersionPage:
    """One page of a version listing: for each key (sorted) its versions and delete
    markers newest first, and the common prefixes. ``next_token`` is opaque."""

    versions: tuple[ObjectVersion, ...]
    prefixes: tuple[str, ...]
    next_token: str | None


@dataclass(slots=True)
class GetResult:
    """An open read: metadata plus a body stream that must be consumed or closed."""

    info: ObjectInfo
    start: int
    end: int  # exclusive
    body: AsyncIterator[bytes]
    _close: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)

    async def aclose(self) -> None:
        if self._close is not None:
            close, self._close = self._close, None
            await close()


@dataclass(frozen=True, slots=True)
class UploadPart:
    number: int  # 1-based, as S3 numbers parts
    etag: str
    checksum: str | None = None  # the part's checksum, when the upload has an algorithm


@runtime_checkable
class ObjectStore(Protocol):
    """What bucketdav needs from a store, and nothing more."""

    @property
    def description(self) -> str:
        """Human-readable name for messages: ``s3://bucket at http://host:port``."""
        ...

    async def check(self) -> None:
        """Fail with a domain error if the store is unreachable or refuses access."""
        ...

    async def head(self, key: str) -> ObjectInfo: ...

    async def get(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        if_match: str | None = None,
    ) -> GetResult:
        """Open ``[start, end)`` (whole object when both are None).

        ``end`` past the object's size is clamped. With ``if_match`` a changed object
        raises ``ObjectChanged``.
        """
        ...

    async def list_page(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage: ...

    async def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        if_none_match: bool = False,
        mtime: float | None = None,
    ) -> ObjectInfo:
        """Write a whole object. ``if_none_match`` refuses (Exists) if the key exists.
        ``mtime`` (seconds since the epoch) is stored as the object's modification time."""
        ...

    async def create_upload(
        self, key: str, content_type: str | None = None, mtime: float | None = None
    ) -> str:
        """Start a multipart upload; ``mtime`` as in ``put``, given at the start."""
        ...

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> UploadPart:
        ...

    async def complete_upload(
        self, key: str, upload_id: str, parts: list[UploadPart], if_none_match: bool = False
    ) -> ObjectInfo:
        """Make the upload the object. ``if_none_match`` refuses (Exists) if the key exists
        by then; the caller still aborts the upload."""
        ...

    async def abort_upload(self, key: str, upload_id: str) -> None: ...

    async def list_uploads(self, prefix: str) -> list[tuple[str, str]]:
        """Open multipart uploads under prefix as ``(key, upload_id)`` pairs."""
        ...

    async def copy(self, src: str, dst: str, if_none_match: bool = False) -> ObjectInfo:
        """Server-side copy. ``if_none_match`` refuses (Exists) if ``dst`` exists."""
        ...

    async def delete(self, key: str) -> None:
        """Delete one key; deleting a missing key is not an error."""
        ...

    async def delete_many(self, keys: list[str]) -> dict[str, str]:
        """Delete up to 1000 keys; returns ``{key: reason}`` for the ones that failed."""
        ...

    # Versions: a store that keeps none raises NotSupported (501) naming itself.
    async def head_version(self, key: str, version_id: str) -> ObjectInfo:
        """The metadata of one version; NotFound for a delete marker or no such version."""
        ...

    async def get_version(
        self,
        key: str,
        version_id: str,
        start: int | None = None,
        end: int | None = None,
        if_match: str | None = None,
    ) -> GetResult:
        """``get`` of one version: every request it makes names ``version_id``."""
        ...

    async def list_versions(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> VersionPage: ...

    async def close(self) -> None: ...

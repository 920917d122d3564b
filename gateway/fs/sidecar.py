"""A small side area per share for client-noise files kept out of the store.

Finder writes ``._name`` AppleDouble files (and ``.DS_Store``) next to every file it copies
and reads them back at once (PROPFIND, sometimes GET); refusing the write breaks the copy
(error -36). By default those files are accepted and held here, in memory, for a short
time instead of being written to the bucket: never listed, never stored, evicted after a
TTL or when the area is full. Bodies larger than ``max_body`` are accepted and dropped
(their metadata is kept, so the follow-up PROPFIND still answers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cachetools import TTLCache

from gateway.storage.base import ObjectInfo

KiB = 1024
MiB = 1024 * KiB
ENTRY_OVERHEAD = 512  # bytes charged per entry, so the byte cap also caps the entry count


@dataclass(frozen=True, slots=True)
class HeldFile:
    info: ObjectInfo
    data: bytes | None  # None: the body was larger than max_body and was dropped


def _size(held: HeldFile) -> int:
    return ENTRY_OVERHEAD + (len(held.data) if held.data is not None else 0)


class SideArea:
    """Client-noise files by object key, bounded in entries, bytes and time."""

    def __init__(
        self,
        ttl: float = 600.0,
        max_bytes: int = 16 * MiB,
        max_body: int = 1 * MiB,
    ) -> None:
        self.max_body = max_body
        self._files: TTLCache[str, HeldFile] = TTLCache(max_bytes, ttl, getsizeof=_size)

    def __len__(self) -> int:
        return len(self._files)

    def get(self, key: str) -> HeldFile | None:
        return self._files.get(key)

    def hold(
        self,
        key: str,
        data: bytes | None,
        size: int,
        etag: str,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Keep a file (``data`` None or over ``max_body``: metadata only)."""
        if data is not None and len(data) > self.max_body:
            data = None
        info = ObjectInfo(
            key=key,
            size=size,
            etag=etag,
            last_modified=datetime.now(UTC).replace(microsecond=0),
            content_type=content_type,
        )
        self._files.pop(key, None)
        self._files[key] = HeldFile(info, data)
        return info

    def drop(self, key: str) -> bool:
        return self._files.pop(key, None) is not None

    def move(self, src: str, dst: str) -> ObjectInfo | None:
        """Rename a held file; None if ``src`` is not held."""
        held = self._files.pop(src, None)
        if held is None:
            return None
        info = held.info
        return self.hold(dst, held.data, info.size, info.etag, info.content_type)

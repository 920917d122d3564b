"""Files that OS clients create or probe for but nobody means to store.

macOS writes AppleDouble ``._name`` files and ``.DS_Store``; Windows writes
``desktop.ini`` and ``Thumbs.db``; Finder probes a fixed list of names at every mount.

By default those files are accepted into a small per-share noise area, in memory, for a
short time instead of being written to the bucket: never listed, never stored, evicted
after a TTL or when the area is full. Finder reads its ``._name`` files back at once, and
refusing the write breaks the copy (error -36). Bodies larger than ``max_body`` are
accepted and dropped (their metadata is kept, so the follow-up PROPFIND still answers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cachetools import TTLCache

from gateway.storage.base import ObjectInfo

_EXACT = frozenset(
    {
        ".ds_store",
        "desktop.ini",
        "thumbs.db",
        "._.",
        ".localized",
        ".metadata_never_index",
        ".metadata_never_index_unless_rootfs",
        ".metadata_direct_scope_only",
        ".ql_disablethumbnails",
        ".ql_disablecache",
        "backups.backupdb",
        ".spotlight-v100",
        ".trashes",
        ".fseventsd",
        ".hidden",
        ".volumeicon.icns",
        "autorun.inf",
    }
)


def is_client_noise(name: str) -> bool:
    """True for OS metadata files (case-insensitive, as Windows compares names)."""
    lowered = name.lower()
    return lowered in _EXACT or name.startswith("._")




KiB = 1024
MiB = 1024 * KiB
ENTRY_OVERHEAD = 512  # bytes charged per entry, so the byte cap also caps the entry count


@dataclass(frozen=True, slots=True)
class NoiseFile:
    info: ObjectInfo
    data: bytes | None  # None: the body was larger than max_body and was dropped


def _size(held: NoiseFile) -> int:
    return ENTRY_OVERHEAD + (len(held.data) if held.data is not None else 0)


class NoiseArea:
    """Client-noise files by object key, bounded in entries, bytes and time."""

    def __init__(
        self,
        ttl: float = 600.0,
        max_bytes: int = 16 * MiB,
        max_body: int = 1 * MiB,
    ) -> None:
        self.max_body = max_body
        self._files: TTLCache[str, NoiseFile] = TTLCache(max_bytes, ttl, getsizeof=_size)

    def __len__(self) -> int:
        return len(self._files)

    def get(self, key: str) -> NoiseFile | None:
        return self._files.get(key)

    def keep(
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
        self._files[key] = NoiseFile(info, data)
        return info

    def drop(self, key: str) -> bool:
        return self._files.pop(key, None) is not None

    def move(self, src: str, dst: str) -> ObjectInfo | None:
        """Rename a held file; None if ``src`` is not held."""
        held = self._files.pop(src, None)
        if held is None:
            return None
        info = held.info
        return self.keep(dst, held.data, info.size, info.etag, info.content_type)

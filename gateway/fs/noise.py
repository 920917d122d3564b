"""Files that OS clients create or probe for but nobody means to store.

macOS writes AppleDouble ``._name`` files and ``.DS_Store``; Windows writes
``desktop.ini`` and ``Thumbs.db``; Finder probes a fixed list of names at every mount.

By default those files are accepted into a small per-share noise area on the state store
(``--state``: this process's memory, or Redis shared by every process and replica), for a
short time instead of being written to the bucket: never listed, never stored, evicted
after a TTL or when the area is full (the entries put longest ago first). Finder reads its
``._name`` files back at once, and refusing the write breaks the copy (error -36). Bodies
larger than ``max_body`` are accepted and dropped (their metadata is kept, so the follow-up
PROPFIND still answers).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.state import NOISE_LIMITS, MemoryState, NoiseLimits, StateStore
from gateway.state import NoiseFile as HeldFile
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


@dataclass(frozen=True, slots=True)
class NoiseFile:
    info: ObjectInfo
    data: bytes | None  # None: the body was larger than max_body and was dropped


def _file(held: HeldFile) -> NoiseFile:
    info = ObjectInfo(
        key=held.key,
        size=held.size,
        etag=held.etag,
        last_modified=held.last_modified,
        content_type=held.content_type,
    )
    return NoiseFile(info, held.data)


class NoiseArea:
    """One share's client-noise files, kept on the state store (``StateStore.noise_*``) so
    every process and replica sees them: bounded in bytes (``ENTRY_OVERHEAD`` charged per
    entry, so in entries too) and time, bodies over ``max_body`` kept as metadata only.

    ``scope`` names the share in the state store (each share has an area of its own);
    without a state store the area is a private in-memory one. The calls raise
    ``StateUnavailable`` (503) while a shared state store cannot be reached.
    """

    def __init__(
        self,
        state: StateStore | None = None,
        scope: str = "",
        limits: NoiseLimits = NOISE_LIMITS,
    ) -> None:
        self.state: StateStore = state if state is not None else MemoryState()
        self.scope = scope
        self.limits = limits

    @property
    def max_body(self) -> int:
        return self.limits.max_body

    async def count(self) -> int:
        return await self.state.noise_count(self.scope)

    async def get(self, key: str) -> NoiseFile | None:
        held = await self.state.noise_get(self.scope, key)
        return _file(held) if held is not None else None

    async def keep(
        self,
        key: str,
        data: bytes | None,
        size: int,
        etag: str,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Keep a file (``data`` None or over ``max_body``: metadata only)."""
        held = await self.state.noise_put(
            self.scope, key, data, size=size, etag=etag, content_type=content_type,
            limits=self.limits,
        )
        return _file(held).info

    async def drop(self, key: str) -> bool:
        return await self.state.noise_drop(self.scope, key)

    async def move(self, src: str, dst: str) -> ObjectInfo | None:
        """Rename a held file (a fresh TTL); None if ``src`` is not held."""
        held = await self.state.noise_move(self.scope, src, dst, limits=self.limits)
        return _file(held).info if held is not None else None

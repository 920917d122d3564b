"""Files that OS clients create or probe for but nobody means to store.

macOS writes AppleDouble ``._name`` files and ``.DS_Store``; Windows writes
``desktop.ini`` and ``Thumbs.db``; Finder probes a fixed list of names at every mount.
"""

from __future__ import annotations

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

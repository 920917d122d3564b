"""A folder of files with one modification time, for clients (rclone) to copy up."""

from __future__ import annotations

import os
from pathlib import Path


def write_tree(root: Path, files: dict[str, bytes], when: float) -> Path:
    """``files`` (relative path -> bytes) under ``root``, each dated ``when``."""
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (when, when))
    return root

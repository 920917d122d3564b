"""The semantics: paths and keys, implicit directories, what a share allows."""

from __future__ import annotations

from gateway.fs.listing import Entry, list_dir
from gateway.fs.paths import DavPath, decode_path
from gateway.fs.share import Share

__all__ = ["DavPath", "Entry", "Share", "decode_path", "list_dir"]

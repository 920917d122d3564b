"""bucketdav: an object store bucket served as a filesystem over HTTP and WebDAV."""

from __future__ import annotations

__version__ = "0.1.0"

"""Modification times a client gives (X-OC-Mtime, PROPPATCH), kept the way rclone keeps them.

rclone's S3 backend stores a file's time as user metadata ``mtime`` (``x-amz-meta-mtime``):
seconds since the epoch with a fraction, as a decimal string. bucketdav writes and reads the
same field, so a bucket written by either shows the same times through the other. A local
folder keeps the time as the file's own mtime (``os.utime``).

An object with a stored mtime shows it as its ``last_modified`` (whole seconds, as HTTP dates
have), everywhere: Last-Modified, getlastmodified, listings, conditional requests.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime

from gateway.storage.base import ObjectInfo

META_KEY = "mtime"  # the user-metadata name: x-amz-meta-mtime
# Bounds of what is taken as a time: years 1 to 9999 fit a datetime and an HTTP date.
EARLIEST = -62_135_596_800.0
LATEST = 253_402_300_799.0


def format_mtime(mtime: float) -> str:
    """rclone's form: the shortest decimal, nanoseconds at most (``1700000000.5``)."""
    text = f"{mtime:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def parse_mtime(text: str | None) -> float | None:
    """A stored or sent time in seconds; None when absent or not a usable number."""
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if not math.isfinite(value) or not EARLIEST <= value <= LATEST:
        return None
    return value


def as_datetime(mtime: float) -> datetime:
    """The time as ``last_modified`` shows it: UTC, whole seconds (floored)."""
    return datetime.fromtimestamp(math.floor(mtime), UTC)


def with_mtime(info: ObjectInfo, mtime: float | None) -> ObjectInfo:
    """``info`` showing ``mtime`` (unchanged when None)."""
    if mtime is None:
        return info
    return dataclasses.replace(info, mtime=mtime, last_modified=as_datetime(mtime))

"""Conditional requests (RFC 9110 section 13), as pure functions over object metadata.

Shared by every front-end: a WebDAV PUT and a browser GET answer the same question.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

from gateway.storage.base import ObjectInfo


class Outcome(Enum):
    PROCEED = "proceed"
    NOT_MODIFIED = "not-modified"  # 304 for GET/HEAD
    FAILED = "failed"  # 412


def parse_etags(header: str) -> list[tuple[bool, str]] | None:
    """``W/"a", "b"`` -> [(weak, opaque)]; ``*`` -> None. Unquoted tags are tolerated."""
    header = header.strip()
    if header == "*":
        return None
    tags: list[tuple[bool, str]] = []
    i, n = 0, len(header)
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        if i >= n:
            break
        weak = header.startswith("W/", i)
        if weak:
            i += 2
        if i < n and header[i] == '"':
            j = header.find('"', i + 1)
            j = n if j < 0 else j
            tags.append((weak, header[i + 1 : j]))
            i = j + 1
        else:
            j = header.find(",", i)
            j = n if j < 0 else j
            tags.append((weak, header[i:j].strip()))
            i = j
    return tags


def opaque(etag: str) -> tuple[bool, str]:
    weak = etag.startswith("W/")
    body = etag[2:] if weak else etag
    return weak, body.strip('"')


def etag_matches(header: str, etag: str | None, *, strong: bool) -> bool:
    """Does the If-Match / If-None-Match list match ``etag`` (None: no current object)?"""
    if etag is None:
        return False
    tags = parse_etags(header)
    if tags is None:
        return True
    weak, value = opaque(etag)
    return any(
        v == value and (not strong or not (w or weak)) for w, v in tags
    )


def parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        # asctime dates carry no zone and "-0000" means "unknown": HTTP dates are GMT.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def evaluate(
    headers: Mapping[str, str], info: ObjectInfo | None, *, safe_method: bool
) -> Outcome:
    """RFC 9110 13.2.2 order: If-Match, If-Unmodified-Since, If-None-Match,
    If-Modified-Since. ``info`` is None when the target does not exist."""
    etag = info.etag if info else None
    if_match = headers.get("If-Match")
    if if_match is not None:
        if not etag_matches(if_match, etag, strong=True):
            return Outcome.FAILED
    elif info is not None:
        since = parse_http_date(headers.get("If-Unmodified-Since"))
        if since is not None and info.last_modified > since:
            return Outcome.FAILED
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        if etag_matches(if_none_match, etag, strong=False):
            return Outcome.NOT_MODIFIED if safe_method else Outcome.FAILED
    elif safe_method and info is not None:
        since = parse_http_date(headers.get("If-Modified-Since"))
        if since is not None and info.last_modified <= since:
            return Outcome.NOT_MODIFIED
    return Outcome.PROCEED


def if_range_allows(header: str | None, info: ObjectInfo) -> bool:
    """If-Range: ranges apply only if the validator still matches (strong for etags)."""
    if header is None:
        return True
    header = header.strip()
    if header.startswith(('"', "W/")):
        weak, value = opaque(header)
        cur_weak, cur = opaque(info.etag)
        return not weak and not cur_weak and value == cur
    date = parse_http_date(header)
    if date is not None:
        return date == info.last_modified
    # Some clients send the ETag without its quotes: compare it as a strong tag.
    cur_weak, cur = opaque(info.etag)
    return bool(header) and not cur_weak and header == cur

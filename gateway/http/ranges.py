"""Range requests (RFC 9110 section 14): parsing and multipart/byteranges framing. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.errors import BadRequest

# ASCII digits only: \d and int() also take "١" (Arabic-Indic one), which RFC 9110 does not.
_SPEC = re.compile(r"^([0-9]{0,19})-([0-9]{0,19})$")


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


class Unsatisfiable(Exception):
    """No range in the header overlaps the representation: answer 416."""


class TooManyRanges(BadRequest):
    pass


def parse_range(header: str | None, size: int, max_ranges: int) -> list[ByteRange] | None:
    """The ranges to serve, or None to serve the whole representation.

    A header that is absent, not in bytes, or malformed is ignored (None), as RFC 9110
    allows. Overlapping or adjacent ranges are coalesced. Raises Unsatisfiable when no
    range can be served and TooManyRanges past ``max_ranges``.
    """
    if not header:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    items = [s.strip() for s in spec.split(",")]
    items = [s for s in items if s]
    if not items:
        return None
    if len(items) > max_ranges:
        raise TooManyRanges(f"too many ranges: {len(items)} (at most {max_ranges})")
    ranges: list[ByteRange] = []
    for item in items:
        m = _SPEC.match(item)
        if not m:
            return None
        first, last = m.group(1), m.group(2)
        if first == "" and last == "":
            return None
        if first == "":
            suffix = int(last)
            if suffix > 0 and size > 0:
                ranges.append(ByteRange(max(0, size - suffix), size))
            continue
        start = int(first)
        if last != "" and int(last) < start:
            return None  # invalid syntax: the whole header is ignored
        if start >= size:
            continue
        end = size if last == "" else min(int(last) + 1, size)
        ranges.append(ByteRange(start, end))
    if not ranges:
        raise Unsatisfiable()
    return coalesce(ranges)


def coalesce(ranges: list[ByteRange]) -> list[ByteRange]:
    """Merge overlapping or touching ranges; keep the client's order if none touch."""
    ordered = sorted(ranges, key=lambda r: r.start)
    merged: list[ByteRange] = [ordered[0]]
    for r in ordered[1:]:
        last = merged[-1]
        if r.start <= last.end:
            merged[-1] = ByteRange(last.start, max(last.end, r.end))
        else:
            merged.append(r)
    return ranges if len(merged) == len(ranges) else merged


def part_header(boundary: str, content_type: str, r: ByteRange, size: int, first: bool) -> bytes:
    lead = "" if first else "\r\n"
    return (
        f"{lead}--{boundary}\r\nContent-Type: {content_type}\r\n"
        f"Content-Range: {r.content_range(size)}\r\n\r\n"
    ).encode("latin-1")


def closing(boundary: str) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode("latin-1")


def multipart_length(boundary: str, content_type: str, ranges: list[ByteRange], size: int) -> int:
    """Exact Content-Length of the multipart/byteranges body."""
    total = len(closing(boundary))
    for i, r in enumerate(ranges):
        total += len(part_header(boundary, content_type, r, size, i == 0)) + r.length
    return total

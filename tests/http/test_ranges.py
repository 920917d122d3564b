"""Range requests (RFC 9110 section 14): which bytes are served, and how they are framed."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http.ranges import (
    ByteRange,
    TooManyRanges,
    Unsatisfiable,
    closing,
    multipart_length,
    parse_range,
    part_header,
)

# ---- parse_range: the forms curl and browsers send ------------------------------------------


def test_a_closed_range_is_served_inclusive_of_its_last_byte() -> None:
    assert parse_range("bytes=0-99", 1000, 8) == [ByteRange(0, 100)]


def test_an_open_ended_range_runs_to_the_end() -> None:
    assert parse_range("bytes=100-", 1000, 8) == [ByteRange(100, 1000)]


def test_a_suffix_range_serves_the_last_bytes() -> None:
    assert parse_range("bytes=-500", 1000, 8) == [ByteRange(500, 1000)]


def test_a_suffix_longer_than_the_object_serves_all_of_it() -> None:
    assert parse_range("bytes=-5000", 1000, 8) == [ByteRange(0, 1000)]


def test_a_last_byte_past_the_end_is_clamped() -> None:
    assert parse_range("bytes=990-5000", 1000, 8) == [ByteRange(990, 1000)]


def test_several_disjoint_ranges_keep_the_clients_order() -> None:
    assert parse_range("bytes=500-599, 0-0", 1000, 8) == [ByteRange(500, 600), ByteRange(0, 1)]


def test_overlapping_and_touching_ranges_are_coalesced() -> None:
    assert parse_range("bytes=0-10,5-20,21-30", 1000, 8) == [ByteRange(0, 31)]


def test_the_unit_is_case_insensitive_and_spaces_are_tolerated() -> None:
    assert parse_range("Bytes = 1-2 ,  4-5", 10, 8) == [ByteRange(1, 3), ByteRange(4, 6)]


def test_ranges_that_start_past_the_end_are_dropped_if_another_is_satisfiable() -> None:
    assert parse_range("bytes=2000-3000,0-1", 1000, 8) == [ByteRange(0, 2)]


def test_content_range_is_inclusive() -> None:
    assert ByteRange(0, 100).content_range(1000) == "bytes 0-99/1000"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "items=0-1",
        "0-1",
        "bytes=a-b",
        "bytes=-",
        "bytes=5-1",
        "bytes=1-2-3",
        "bytes=0-1,x",
        "bytes=--1",
        "bytes=+1-2",
        "bytes=1 2-3",
        "bytes=99999999999999999999-",
    ],
)
def test_a_malformed_header_is_ignored_so_the_whole_object_is_served(header: str | None) -> None:
    assert parse_range(header, 1000, 8) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=-0", "bytes=5000-,-0"])
def test_no_satisfiable_range_is_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 1000, 8)


def test_every_range_of_an_empty_object_is_unsatisfiable() -> None:
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=0-", 0, 8)
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=-1", 0, 8)


def test_more_ranges_than_allowed_is_refused_with_a_clear_message() -> None:
    header = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(5))
    assert parse_range(header, 1000, 5) is not None
    with pytest.raises(TooManyRanges, match=r"too many ranges: 5 \(at most 4\)"):
        parse_range(header, 1000, 4)


# ---- multipart/byteranges framing ----------------------------------------------------------


def _multipart_body(data: bytes, ranges: list[ByteRange], boundary: str, ctype: str) -> bytes:
    """The body exactly as objects.py writes it."""
    out = bytearray()
    for i, r in enumerate(ranges):
        out += part_header(boundary, ctype, r, len(data), i == 0)
        out += data[r.start : r.end]
    out += closing(boundary)
    return bytes(out)


def _reassemble(body: bytes, boundary: str) -> list[tuple[str, bytes]]:
    """What a client does: split on the delimiter lines, read each part's Content-Range."""
    delimiter = b"--" + boundary.encode()
    assert body.startswith(delimiter + b"\r\n")
    assert body.endswith(b"\r\n" + delimiter + b"--\r\n")
    inner = body[len(delimiter) + 2 : -(len(delimiter) + 6)]
    parts = []
    for raw in inner.split(b"\r\n" + delimiter + b"\r\n"):
        head, sep, payload = raw.partition(b"\r\n\r\n")
        assert sep, "each part has a header block ended by CRLF CRLF"
        fields = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n"))
        parts.append((fields["Content-Range"], payload))
    return parts


def test_multipart_parts_are_framed_with_crlf_and_a_content_range_each() -> None:
    data = bytes(range(100))
    ranges = [ByteRange(0, 1), ByteRange(10, 21)]
    body = _multipart_body(data, ranges, "BOUNDARY", "text/plain")
    assert body == (
        b"--BOUNDARY\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-0/100\r\n\r\n"
        + data[0:1]
        + b"\r\n--BOUNDARY\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-20/100\r\n\r\n"
        + data[10:21]
        + b"\r\n--BOUNDARY--\r\n"
    )
    assert multipart_length("BOUNDARY", "text/plain", ranges, 100) == len(body)


# ---- properties ------------------------------------------------------------------------------

_spec = st.one_of(
    st.tuples(st.integers(0, 5000), st.integers(0, 5000)).map(
        lambda t: f"{min(t)}-{max(t)}"
    ),
    st.integers(0, 5000).map(lambda n: f"{n}-"),
    st.integers(1, 5000).map(lambda n: f"-{n}"),
)


@given(size=st.integers(0, 4000), specs=st.lists(_spec, min_size=1, max_size=12))
def test_any_valid_header_serves_ranges_inside_the_object_without_overlap(
    size: int, specs: list[str]
) -> None:
    header = "bytes=" + ",".join(specs)
    try:
        ranges = parse_range(header, size, 64)
    except Unsatisfiable:
        # Only when no spec reaches into the object.
        for spec in specs:
            first, _ = spec.split("-")
            assert size == 0 or (first != "" and int(first) >= size)
        return
    assert ranges, "a valid header yields ranges or Unsatisfiable"
    for r in ranges:
        assert 0 <= r.start < r.end <= size
    ordered = sorted(ranges, key=lambda r: r.start)
    for a, b in itertools.pairwise(ordered):
        assert a.end < b.start, "coalesced ranges neither overlap nor touch"


@given(
    data=st.binary(min_size=1, max_size=3000),
    specs=st.lists(_spec, min_size=1, max_size=12),
    ctype=st.sampled_from(["text/plain", "application/octet-stream", "image/png"]),
)
def test_a_client_reassembles_exactly_the_requested_slices(
    data: bytes, specs: list[str], ctype: str
) -> None:
    size = len(data)
    try:
        ranges = parse_range("bytes=" + ",".join(specs), size, 64)
    except Unsatisfiable:
        return
    assert ranges is not None
    boundary = "3d6b6a416f9b5"
    body = _multipart_body(data, ranges, boundary, ctype)
    assert multipart_length(boundary, ctype, ranges, size) == len(body)
    parts = _reassemble(body, boundary)
    assert len(parts) == len(ranges)
    for (content_range, payload), r in zip(parts, ranges, strict=True):
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", content_range)
        assert m is not None
        start, last, total = (int(g) for g in m.groups())
        assert (start, last + 1, total) == (r.start, r.end, size)
        assert payload == data[start : last + 1]

"""Range requests (RFC 9110 section 14): which bytes are served, and how they are framed.

The properties compare the gateway with a model of RFC 9110 ranges written here, byte by
byte, and run the real response path (a GET through the app) for what goes on the wire,
read back with a multipart splitter of this file's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.http.ranges import (
    ByteRange,
    TooManyRanges,
    Unsatisfiable,
    multipart_length,
    parse_range,
)
from gateway.settings import ServerSettings
from tests.apps import app_for
from tests.memorystore import MemoryStore

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
        "bytes=١-٢",  # Arabic-Indic digits: int() takes them, RFC 9110 does not
        "bytes=０-１",  # fullwidth digits
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


# ---- a model of RFC 9110 ranges, byte by byte -------------------------------------------

UNSATISFIABLE = "unsatisfiable"


def rfc9110_ranges(specs: list[str], size: int) -> list[range] | str | None:
    """What a server that coalesces (RFC 9110 14.2 allows it) serves for ``bytes=specs``.

    None: a spec is invalid (last < first), so the whole field is ignored (14.1.1).
    Each valid spec selects a set of bytes; a spec selecting none is unsatisfiable, and if
    every spec is, the answer is 416. The bytes served are the union of the selections, as
    maximal runs of consecutive bytes: in the client's order when every selection is a run
    of its own, else in ascending order.
    """
    selections: list[range] = []
    for spec in specs:
        first, _, last = spec.partition("-")
        if first == "":  # suffix-byte-range-spec: the last N bytes
            chosen = range(max(size - int(last), 0), size)
        elif last != "" and int(last) < int(first):
            return None
        else:
            stop = size if last == "" else min(int(last) + 1, size)
            chosen = range(int(first), stop)
        if chosen:
            selections.append(chosen)
    if not selections:
        return UNSATISFIABLE
    runs: list[range] = []
    for byte in sorted(set().union(*selections)):
        if runs and runs[-1].stop == byte:
            runs[-1] = range(runs[-1].start, byte + 1)
        else:
            runs.append(range(byte, byte + 1))
    return selections if len(runs) == len(selections) else runs


def test_the_model_agrees_with_the_examples_above() -> None:
    assert rfc9110_ranges(["500-599", "0-0"], 1000) == [range(500, 600), range(0, 1)]
    assert rfc9110_ranges(["0-10", "5-20", "21-30"], 1000) == [range(0, 31)]
    assert rfc9110_ranges(["-5000"], 1000) == [range(0, 1000)]
    assert rfc9110_ranges(["2000-3000", "0-1"], 1000) == [range(0, 2)]
    assert rfc9110_ranges(["5000-", "-0"], 1000) == UNSATISFIABLE
    assert rfc9110_ranges(["0-"], 0) == UNSATISFIABLE
    assert rfc9110_ranges(["0-1", "5-1"], 1000) is None


@st.composite
def _spec(draw: st.DrawFn, size: int) -> str:
    """One byte-range-spec, its numbers mostly inside an object of ``size`` bytes."""
    bound = st.integers(0, size + 20)
    kind = draw(st.sampled_from(["short", "short", "closed", "open", "suffix", "backwards"]))
    if kind == "short":  # a few bytes: several of these seldom touch, so parts are many
        first = draw(bound)
        return f"{first}-{first + draw(st.integers(0, 40))}"
    if kind == "open":
        return f"{draw(bound)}-"
    if kind == "suffix":
        return f"-{draw(bound)}"
    first, last = sorted((draw(bound), draw(bound)))
    if kind == "backwards" and first != last and draw(st.integers(0, 9)) == 0:
        return f"{last}-{first}"  # invalid: voids the header (now and then)
    return f"{first}-{last}"


@st.composite
def _headers(draw: st.DrawFn, size: int) -> list[str]:
    return draw(st.lists(_spec(size), min_size=1, max_size=12))


@given(st.integers(0, 4000).flatmap(lambda size: st.tuples(st.just(size), _headers(size))))
def test_parse_range_serves_exactly_what_rfc_9110_selects(case: tuple[int, list[str]]) -> None:
    size, specs = case
    expected = rfc9110_ranges(specs, size)
    header = "bytes=" + ",".join(specs)
    if expected == UNSATISFIABLE:
        with pytest.raises(Unsatisfiable):
            parse_range(header, size, 64)
        return
    served = parse_range(header, size, 64)
    if expected is None:
        assert served is None
    else:
        assert served is not None
        assert [range(r.start, r.end) for r in served] == expected


# ---- the real response path -----------------------------------------------------------------


async def _get(data: bytes, ctype: str, range_header: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``/object`` (``data``, stored as ``ctype``) through the gateway app."""
    store = MemoryStore()
    store.put_sync("object", data, ctype)
    app = app_for(store, server=ServerSettings(max_ranges=64))
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/object", headers={"Range": range_header})
        return resp.status, dict(resp.headers), await resp.read()


def _content(size: int) -> bytes:
    """``size`` bytes in which a shifted slice rarely looks the same."""
    return hashlib.shake_256(b"ranges").digest(size)


def get(data: bytes, ctype: str, range_header: str) -> tuple[int, dict[str, str], bytes]:
    return asyncio.run(_get(data, ctype, range_header))


def split_multipart(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """RFC 2046 5.1.1, without preamble or epilogue: ``--b CRLF part``, then for each further
    part ``CRLF --b CRLF part``, then ``CRLF --b-- CRLF``. Each part: header lines, an empty
    line, the payload. Returns (headers, payload) per part."""
    delimiter = b"\r\n--" + boundary.encode()
    pieces = (b"\r\n" + body).split(delimiter)
    assert pieces[0] == b"", "the body starts with the first delimiter"
    assert pieces[-1] == b"--\r\n", "the body ends with the close delimiter and CRLF"
    parts = []
    for piece in pieces[1:-1]:
        assert piece.startswith(b"\r\n"), "a delimiter line ends with CRLF"
        head, sep, payload = piece[2:].partition(b"\r\n\r\n")
        assert sep, "each part's header block ends with an empty line"
        fields = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, colon, value = line.partition(":")
            assert colon, line
            fields[name.strip().lower()] = value.strip()
        parts.append((fields, payload))
    return parts


def test_multipart_parts_are_framed_with_crlf_and_a_content_range_each() -> None:
    data = bytes(range(100))
    status, headers, body = get(data, "text/plain", "bytes=0-0,10-20")
    assert status == 206
    match = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", headers["Content-Type"])
    assert match is not None
    boundary = match.group(1)
    b = boundary.encode()
    assert body == (
        b"--" + b + b"\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-0/100\r\n\r\n"
        + data[0:1]
        + b"\r\n--" + b + b"\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-20/100\r\n\r\n"
        + data[10:21]
        + b"\r\n--" + b + b"--\r\n"
    )
    ranges = [ByteRange(0, 1), ByteRange(10, 21)]
    assert multipart_length(boundary, "text/plain", ranges, 100) == len(body)
    assert headers["Content-Length"] == str(len(body))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.integers(0, 3000).flatmap(lambda size: st.tuples(st.just(_content(size)),
                                                              _headers(size))),
    ctype=st.sampled_from(["text/plain", "application/octet-stream", "image/png"]),
)
def test_a_client_reassembles_exactly_the_requested_slices(
    case: tuple[bytes, list[str]], ctype: str
) -> None:
    data, specs = case
    size = len(data)
    expected = rfc9110_ranges(specs, size)
    status, headers, body = get(data, ctype, "bytes=" + ",".join(specs))
    assert headers["Content-Length"] == str(len(body))
    if expected is None:
        assert (status, body) == (200, data)
    elif expected == UNSATISFIABLE:
        assert status == 416
        assert headers["Content-Range"] == f"bytes */{size}"
    elif len(expected) == 1:
        [only] = expected
        assert status == 206
        assert headers["Content-Range"] == f"bytes {only.start}-{only.stop - 1}/{size}"
        assert body == data[only.start : only.stop]
    else:
        assert status == 206
        match = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", headers["Content-Type"])
        assert match is not None
        parts = split_multipart(body, match.group(1))
        assert parts == [
            (
                {"content-type": ctype, "content-range": f"bytes {r.start}-{r.stop - 1}/{size}"},
                data[r.start : r.stop],
            )
            for r in expected
        ]

"""GET and HEAD of objects: headers, every Range form, conditionals, errors."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.errors import AccessDenied, ObjectChanged, Unavailable, Upstream
from gateway.settings import ServerSettings, Source
from gateway.storage.base import ObjectInfo
from gateway.storage.local import LocalStore
from tests.apps import app_for
from tests.memorystore import MemoryStore

Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]
MakeClient = Callable[..., Awaitable[Client]]

DATA = bytes(range(256)) * 4  # 1024 bytes, every offset distinguishable
BIG = bytes(i % 251 for i in range(1024 * 1024))


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.put_sync("data.bin", DATA)
    store.put_sync("notes.txt", b"hello, world\n")
    store.put_sync("typed", b"{}", "application/vnd.custom+json")
    store.put_sync("empty", b"")
    store.put_sync("big", BIG)
    store.put_sync("dir/inside.txt", b"x")
    store.calls.clear()
    return store


@pytest.fixture
async def client(aiohttp_client: MakeClient, store: MemoryStore) -> Client:
    return await aiohttp_client(app_for(store, server=ServerSettings(max_ranges=8)))


def info(store: MemoryStore, key: str) -> ObjectInfo:
    return store.objects[key].info


def http_date(store: MemoryStore, key: str, shift: int = 0) -> str:
    return format_datetime(info(store, key).last_modified + timedelta(seconds=shift), usegmt=True)


async def raw_request(client: Client, target: bytes, method: bytes = b"GET") -> tuple[int, bytes]:
    """Send a request line exactly as given: aiohttp's client would normalise ``..``."""
    assert client.server.host is not None and client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(method + b" " + target + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


# ---- whole objects -------------------------------------------------------------------------


async def test_get_serves_the_object_with_its_validators(
    client: Client, store: MemoryStore
) -> None:
    resp = await client.get("/data.bin")
    assert resp.status == 200
    assert await resp.read() == DATA
    assert resp.headers["Content-Length"] == str(len(DATA))
    assert resp.headers["ETag"] == info(store, "data.bin").etag
    assert resp.headers["Last-Modified"] == http_date(store, "data.bin")
    assert resp.headers["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    ("key", "content_type"),
    [
        ("typed", "application/vnd.custom+json"),  # stored
        ("notes.txt", "text/plain"),  # guessed from the name
        ("data.bin", "application/octet-stream"),  # unknown
    ],
)
async def test_the_content_type_is_the_stored_one_or_a_guess(
    client: Client, key: str, content_type: str
) -> None:
    resp = await client.get("/" + key)
    assert resp.content_type == content_type


async def test_head_answers_the_same_headers_without_a_body(client: Client) -> None:
    got = await client.get("/notes.txt")
    head = await client.head("/notes.txt")
    assert head.status == 200
    assert await head.read() == b""
    for name in ("Content-Length", "Content-Type", "ETag", "Last-Modified", "Accept-Ranges"):
        assert head.headers[name] == got.headers[name]


async def test_a_plain_get_costs_exactly_one_store_request(
    client: Client, store: MemoryStore
) -> None:
    resp = await client.get("/notes.txt")
    assert await resp.read() == b"hello, world\n"
    assert store.calls == Counter(get=1)


async def test_an_empty_object_is_served_empty(client: Client) -> None:
    resp = await client.get("/empty")
    assert resp.status == 200
    assert resp.headers["Content-Length"] == "0"
    assert await resp.read() == b""


# ---- ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=1000-", 1000, 1024),
        ("bytes=-24", 1000, 1024),
        ("bytes=5-5", 5, 6),
        ("bytes=1000-99999", 1000, 1024),
        ("bytes=0-10,5-20", 0, 21),  # overlapping: coalesced into one part
    ],
)
async def test_a_single_range_is_a_206_with_its_content_range(
    client: Client, spec: str, start: int, end: int
) -> None:
    resp = await client.get("/data.bin", headers={"Range": spec})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes {start}-{end - 1}/1024"
    assert resp.headers["Content-Length"] == str(end - start)
    assert resp.content_type == "application/octet-stream"
    assert await resp.read() == DATA[start:end]


async def test_several_ranges_are_a_multipart_byteranges_body(client: Client) -> None:
    resp = await client.get("/notes.txt", headers={"Range": "bytes=0-0,7-11"})
    assert resp.status == 206
    match = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", resp.headers["Content-Type"])
    assert match is not None
    boundary = match.group(1).encode()
    body = await resp.read()
    assert resp.headers["Content-Length"] == str(len(body))
    assert body == (
        b"--" + boundary + b"\r\n"
        b"Content-Type: text/plain\r\n"
        b"Content-Range: bytes 0-0/13\r\n\r\n"
        b"h\r\n"
        b"--" + boundary + b"\r\n"
        b"Content-Type: text/plain\r\n"
        b"Content-Range: bytes 7-11/13\r\n\r\n"
        b"world\r\n"
        b"--" + boundary + b"--\r\n"
    )


async def test_multipart_parts_are_readable_with_a_multipart_reader(client: Client) -> None:
    resp = await client.get("/data.bin", headers={"Range": "bytes=500-599, 0-9, 1020-"})
    reader = aiohttp.MultipartReader.from_response(resp)
    parts = []
    while (part := await reader.next()) is not None:
        assert isinstance(part, aiohttp.BodyPartReader)
        parts.append((part.headers["Content-Range"], await part.read()))
    assert parts == [
        ("bytes 500-599/1024", DATA[500:600]),
        ("bytes 0-9/1024", DATA[0:10]),
        ("bytes 1020-1023/1024", DATA[1020:]),
    ]


async def test_head_with_several_ranges_announces_the_multipart_length(client: Client) -> None:
    got = await client.get("/data.bin", headers={"Range": "bytes=0-0,10-20"})
    head = await client.head("/data.bin", headers={"Range": "bytes=0-0,10-20"})
    assert head.status == 206
    assert head.headers["Content-Length"] == str(len(await got.read()))
    assert await head.read() == b""


async def test_an_unsatisfiable_range_is_416_with_the_size(client: Client) -> None:
    resp = await client.get("/data.bin", headers={"Range": "bytes=5000-"})
    assert resp.status == 416
    assert resp.headers["Content-Range"] == "bytes */1024"
    assert "1024 bytes" in await resp.text()


@pytest.mark.parametrize("spec", ["bytes=abc", "bytes=9-1", "lines=1-2", "bytes=1-2-3"])
async def test_a_malformed_range_is_ignored_and_the_whole_object_served(
    client: Client, spec: str
) -> None:
    resp = await client.get("/data.bin", headers={"Range": spec})
    assert resp.status == 200
    assert await resp.read() == DATA


async def test_too_many_ranges_is_refused_clearly(client: Client) -> None:
    spec = "bytes=" + ",".join(f"{i * 10}-{i * 10}" for i in range(9))
    resp = await client.get("/data.bin", headers={"Range": spec})
    assert resp.status == 400
    assert resp.content_type == "text/plain"
    assert "too many ranges" in await resp.text()


async def test_ranges_of_a_local_folder(aiohttp_client: MakeClient, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "file.bin").write_bytes(DATA)
    store = LocalStore(tmp_path)
    client = await aiohttp_client(
        app_for(store, source=Source("file", str(tmp_path)))
    )
    whole = await client.get("/sub/file.bin")
    assert await whole.read() == DATA
    assert whole.headers["ETag"] == (await store.head("sub/file.bin")).etag
    part = await client.get("/sub/file.bin", headers={"Range": "bytes=-10"})
    assert part.status == 206
    assert await part.read() == DATA[-10:]
    redirect = await client.get("/sub", allow_redirects=False)
    assert redirect.status == 301
    assert redirect.headers["Location"] == "/sub/"


# ---- conditionals --------------------------------------------------------------------------


async def test_if_none_match_with_the_current_etag_is_304(
    client: Client, store: MemoryStore
) -> None:
    etag = info(store, "data.bin").etag
    resp = await client.get("/data.bin", headers={"If-None-Match": etag})
    assert resp.status == 304
    assert resp.headers["ETag"] == etag
    assert await resp.read() == b""
    changed = await client.get("/data.bin", headers={"If-None-Match": '"old"'})
    assert changed.status == 200


async def test_if_modified_since_is_304_unless_modified_later(
    client: Client, store: MemoryStore
) -> None:
    exact = http_date(store, "data.bin")
    same = await client.get("/data.bin", headers={"If-Modified-Since": exact})
    assert same.status == 304
    earlier = http_date(store, "data.bin", -60)
    older = await client.get("/data.bin", headers={"If-Modified-Since": earlier})
    assert older.status == 200


async def test_if_match_with_another_etag_is_412(client: Client, store: MemoryStore) -> None:
    resp = await client.get("/data.bin", headers={"If-Match": '"other"'})
    assert resp.status == 412
    assert resp.content_type == "text/plain"
    ok = await client.get("/data.bin", headers={"If-Match": info(store, "data.bin").etag})
    assert ok.status == 200
    assert await ok.read() == DATA


async def test_if_unmodified_since_an_earlier_date_is_412(
    client: Client, store: MemoryStore
) -> None:
    earlier = http_date(store, "data.bin", -60)
    resp = await client.get("/data.bin", headers={"If-Unmodified-Since": earlier})
    assert resp.status == 412
    later = http_date(store, "data.bin", 60)
    assert (await client.get("/data.bin", headers={"If-Unmodified-Since": later})).status == 200


async def test_if_range_with_the_current_etag_serves_the_range(
    client: Client, store: MemoryStore
) -> None:
    etag = info(store, "data.bin").etag
    resp = await client.get("/data.bin", headers={"Range": "bytes=0-9", "If-Range": etag})
    assert resp.status == 206
    assert await resp.read() == DATA[:10]


async def test_if_range_with_an_old_etag_serves_the_whole_object(client: Client) -> None:
    resp = await client.get("/data.bin", headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert resp.status == 200
    assert await resp.read() == DATA


async def test_if_range_by_date(client: Client, store: MemoryStore) -> None:
    exact = http_date(store, "data.bin")
    resp = await client.get("/data.bin", headers={"Range": "bytes=0-9", "If-Range": exact})
    assert resp.status == 206
    earlier = http_date(store, "data.bin", -60)
    resp = await client.get("/data.bin", headers={"Range": "bytes=0-9", "If-Range": earlier})
    assert resp.status == 200
    assert await resp.read() == DATA


# ---- paths ---------------------------------------------------------------------------------


async def test_a_directory_without_its_slash_redirects_to_it(client: Client) -> None:
    resp = await client.get("/dir", allow_redirects=False)
    assert resp.status == 301
    assert resp.headers["Location"] == "/dir/"
    head = await client.head("/dir?format=json", allow_redirects=False)
    assert head.status == 301
    assert head.headers["Location"] == "/dir/?format=json"


async def test_a_missing_object_is_a_plain_404(client: Client) -> None:
    resp = await client.get("/no/such%20thing")
    assert resp.status == 404
    assert resp.content_type == "text/plain"
    assert await resp.text() == "/no/such%20thing does not exist\n"
    assert (await client.head("/no-such")).status == 404


@pytest.mark.parametrize(
    "target",
    [
        b"/../etc/passwd",
        b"/dir/../data.bin",
        b"/%2e%2e/data.bin",
        b"/%2E%2e/data.bin",
        b"/dir/%2e%2E/data.bin",
        b"/./data.bin",
        b"/data.bin%00",
        b"/dir%5Cinside.txt",
        b"/dir%2Finside.txt",
        b"/dir//inside.txt",
        b"/%ff",
    ],
)
async def test_traversal_and_invalid_paths_are_400_without_touching_the_store(
    client: Client, store: MemoryStore, target: bytes
) -> None:
    for method in (b"GET", b"HEAD"):
        status, body = await raw_request(client, target, method)
        assert status == 400
    status, body = await raw_request(client, target)
    assert body.strip(), "the 400 names the problem"
    assert store.calls == Counter()


async def test_an_object_replaced_behind_the_cache_is_served_fresh(
    client: Client, store: MemoryStore
) -> None:
    assert (await client.head("/notes.txt")).status == 200  # metadata now cached
    store.put_sync("notes.txt", b"replaced by another writer\n")
    resp = await client.get("/notes.txt", headers={"Range": "bytes=0-7"})
    assert resp.status == 206
    assert await resp.read() == b"replaced"
    assert resp.headers["ETag"] == info(store, "notes.txt").etag


# ---- failures ------------------------------------------------------------------------------


async def test_an_object_changing_mid_read_aborts_the_connection(
    client: Client, store: MemoryStore
) -> None:
    store.paced = True  # the first bytes go out before the store fails
    store.fail("get", ObjectChanged("big changed"), after_bytes=256 * 1024)
    resp = await client.get("/big")
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


async def test_a_range_failing_mid_read_aborts_the_connection(
    client: Client, store: MemoryStore
) -> None:
    # Past the engine's retries: every further GET of the object fails too.
    store.fail("get", Unavailable("gone"), times=1, after_bytes=128 * 1024)
    store.fail("get", Unavailable("gone"), times=100)
    resp = await client.get("/big", headers={"Range": "bytes=1000-"})
    assert resp.status == 206
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


async def test_the_store_refusing_our_credentials_is_403_naming_them(
    client: Client, store: MemoryStore
) -> None:
    store.fail("get", AccessDenied())
    resp = await client.get("/data.bin")
    assert resp.status == 403
    assert "credentials" in await resp.text()


@pytest.mark.parametrize(("error", "status"), [(Unavailable(), 503), (Upstream(), 502)])
async def test_store_failures_before_the_body_are_5xx(
    client: Client, store: MemoryStore, error: Exception, status: int
) -> None:
    store.fail("get", error, times=100)  # type: ignore[arg-type]  # past any retry
    resp = await client.get("/data.bin")
    assert resp.status == status
    assert resp.content_type == "text/plain"
    store.fail("head", error, times=100)  # type: ignore[arg-type]
    assert (await client.head("/data.bin")).status == status


async def test_an_unsupported_method_is_405_with_allow(client: Client) -> None:
    resp = await client.request("PATCH", "/data.bin")
    assert resp.status == 405
    allowed = {m.strip() for m in resp.headers["Allow"].split(",")}
    assert {"GET", "HEAD"} <= allowed
    assert "PATCH" not in allowed
    assert "PATCH" in await resp.text()

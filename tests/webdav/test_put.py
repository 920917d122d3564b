"""PUT: what real clients send and what they need back, under each policy flag.

Default mode mirrors Mountpoint: new objects are created (201), existing ones are not
replaced (403 naming --allow-overwrite) except placeholders; every refusal is a one-line
plain body naming the flag; nothing partial is ever visible.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.engine import upload
from gateway.settings import EngineSettings, Policy
from gateway.state import memory
from gateway.storage.base import ObjectStore
from tests.apps import app_for, gateway_of, port_of, read_reply, serving, share_of
from tests.memorystore import MemoryStore
from tests.webdav.davxml import multistatus
from tests.webdav.writing import LOCK_FINDER, keys, read, store_fixture, wait_for

store = store_fixture("memory", "local", "moto")
MiB = 1024 * 1024


async def client_for(aiohttp_client: Any, store: ObjectStore, **options: Any) -> Any:
    return await aiohttp_client(app_for(store, **options))


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


# ---- create and replace -------------------------------------------------------------------


async def test_put_creates_an_object_201_with_etag_that_get_repeats(
    aiohttp_client: Any, store: ObjectStore
) -> None:
    client = await client_for(aiohttp_client, store)
    resp = await client.put("/notes.txt", data=b"hello")
    assert resp.status == 201
    assert resp.headers["ETag"] and "Last-Modified" in resp.headers
    assert await read(store, "notes.txt") == b"hello"
    got = await client.get("/notes.txt")
    assert await got.read() == b"hello"
    assert got.headers["ETag"] == resp.headers["ETag"]


async def test_put_onto_an_existing_object_is_refused_by_default(
    aiohttp_client: Any, store: ObjectStore
) -> None:
    await store.put("doc.txt", b"original")
    client = await client_for(aiohttp_client, store)
    resp = await client.put("/doc.txt", data=b"replacement")
    assert resp.status == 403
    text = await resp.text()
    assert "--allow-overwrite" in text and text.count("\n") == 1
    assert await read(store, "doc.txt") == b"original"


async def test_put_replaces_with_allow_overwrite_204(
    aiohttp_client: Any, store: ObjectStore
) -> None:
    await store.put("doc.txt", b"original")
    client = await client_for(aiohttp_client, store, policy=Policy(allow_overwrite=True))
    resp = await client.put("/doc.txt", data=b"replacement")
    assert resp.status == 204
    assert await read(store, "doc.txt") == b"replacement"
    got = await client.get("/doc.txt")
    assert await got.read() == b"replacement"  # the cache saw the write


async def test_a_zero_byte_placeholder_is_replaced_by_the_next_put(
    aiohttp_client: Any, store: ObjectStore
) -> None:
    client = await client_for(aiohttp_client, store)
    assert (await client.put("/new.bin", data=b"")).status == 201
    resp = await client.put("/new.bin", data=b"the data")
    assert resp.status == 204
    assert await read(store, "new.bin") == b"the data"
    again = await client.put("/new.bin", data=b"more")
    assert again.status == 403  # no longer a placeholder


async def test_read_only_refuses_every_put(aiohttp_client: Any) -> None:
    store = MemoryStore()
    client = await client_for(aiohttp_client, store, policy=Policy(read_only=True,
                                                                   allow_overwrite=True))
    resp = await client.put("/x", data=b"x")
    assert resp.status == 403 and "--read-only" in await resp.text()
    assert store.objects == {}


# ---- the namespace ------------------------------------------------------------------------


async def test_put_into_a_missing_parent_is_409(aiohttp_client: Any, store: ObjectStore) -> None:
    client = await client_for(aiohttp_client, store)
    resp = await client.put("/no/such/dir/file", data=b"x")
    assert resp.status == 409 and "does not exist" in await resp.text()
    assert await keys(store) == set()


async def test_put_below_a_file_is_409(aiohttp_client: Any, store: ObjectStore) -> None:
    await store.put("file", b"x")
    client = await client_for(aiohttp_client, store)
    assert (await client.put("/file/child", data=b"x")).status == 409


async def test_put_into_an_implicit_directory_works(aiohttp_client: Any, store: ObjectStore
                                                   ) -> None:
    await store.put("photos/2024/a.jpg", b"a")
    client = await client_for(aiohttp_client, store)
    assert (await client.put("/photos/2024/b.jpg", data=b"b")).status == 201


@pytest.mark.parametrize("path", ["/", "/dir/", "/dir"])
async def test_put_on_a_collection_is_405(aiohttp_client: Any, path: str) -> None:
    store = MemoryStore()
    store.put_sync("dir/", b"")
    client = await client_for(aiohttp_client, store)
    resp = await client.put(path, data=b"x")
    assert resp.status == 405 and "collection" in await resp.text()
    assert "Allow" in resp.headers
    assert set(store.objects) == {"dir/"}


async def test_partial_put_is_refused(aiohttp_client: Any) -> None:
    store = MemoryStore()
    client = await client_for(aiohttp_client, store)
    resp = await client.put("/f", data=b"abc", headers={"Content-Range": "bytes 0-2/10"})
    assert resp.status == 400 and "whole objects" in await resp.text()
    assert store.objects == {}


# ---- preconditions --------------------------------------------------------------------------


async def test_if_none_match_star_on_an_existing_object_is_412(
    aiohttp_client: Any, store: ObjectStore
) -> None:
    await store.put("f", b"x")
    client = await client_for(aiohttp_client, store, policy=Policy(allow_overwrite=True))
    resp = await client.put("/f", data=b"y", headers={"If-None-Match": "*"})
    assert resp.status == 412
    assert await read(store, "f") == b"x"


async def test_if_none_match_star_creates_a_new_object(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, MemoryStore())
    assert (await client.put("/f", data=b"y", headers={"If-None-Match": "*"})).status == 201


async def test_if_match_decides_a_replacement(aiohttp_client: Any, store: ObjectStore) -> None:
    client = await client_for(aiohttp_client, store, policy=Policy(allow_overwrite=True))
    etag = (await client.put("/f", data=b"one")).headers["ETag"]
    wrong = await client.put("/f", data=b"two", headers={"If-Match": '"not-the-etag"'})
    assert wrong.status == 412
    right = await client.put("/f", data=b"two", headers={"If-Match": etag})
    assert right.status == 204
    assert await read(store, "f") == b"two"


async def test_if_match_on_a_missing_object_is_412(aiohttp_client: Any) -> None:
    store = MemoryStore()
    client = await client_for(aiohttp_client, store)
    assert (await client.put("/f", data=b"x", headers={"If-Match": "*"})).status == 412
    assert store.objects == {}


# ---- bodies -----------------------------------------------------------------------------------


async def test_a_chunked_body_is_stored(aiohttp_client: Any, store: ObjectStore) -> None:
    client = await client_for(aiohttp_client, store)
    data = bytes(range(256)) * 1000
    resp = await client.put("/c.bin", data=chunks(data))
    assert resp.status == 201
    assert await read(store, "c.bin") == data


async def test_content_type_is_stored_or_guessed(aiohttp_client: Any, store: ObjectStore) -> None:
    client = await client_for(aiohttp_client, store)
    await client.put("/a.md", data=b"# hi", headers={"Content-Type": "text/markdown"})
    await client.put("/b.json", data=b"{}", headers={"Content-Type": ""})
    assert (await client.get("/a.md")).headers["Content-Type"].startswith("text/markdown")
    assert (await client.get("/b.json")).headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("size", [1000, 12 * MiB])
async def test_a_body_shorter_than_x_expected_entity_length_is_not_committed(
    aiohttp_client: Any, store: ObjectStore, size: int
) -> None:
    client = await client_for(aiohttp_client, store, engine=EngineSettings(write_part_size=5))
    resp = await client.put(
        "/short.bin",
        data=chunks(b"x" * size),
        headers={"X-Expected-Entity-Length": str(size + 10)},
    )
    assert resp.status == 400
    assert "announced" in await resp.text()
    assert await keys(store) == set()
    assert await store.list_uploads("") == []


async def test_a_body_longer_than_x_expected_entity_length_is_not_committed(
    aiohttp_client: Any,
) -> None:
    store = MemoryStore()
    client = await client_for(aiohttp_client, store)
    resp = await client.put(
        "/long.bin", data=chunks(b"x" * 1000), headers={"X-Expected-Entity-Length": "999"}
    )
    assert resp.status == 400
    assert store.objects == {}


async def test_a_malformed_x_expected_entity_length_is_400(aiohttp_client: Any) -> None:
    store = MemoryStore()
    client = await client_for(aiohttp_client, store)
    resp = await client.put("/f", data=b"x", headers={"X-Expected-Entity-Length": "lots"})
    assert resp.status == 400 and "X-Expected-Entity-Length" in await resp.text()
    assert store.objects == {}


async def test_40_mib_streams_in_parts_with_bounded_memory(aiohttp_client: Any) -> None:
    store = MemoryStore()
    app = app_for(store, engine=EngineSettings(write_part_size=5))
    client = await aiohttp_client(app)
    data = bytes(range(256)) * (160 * 1024)  # 40 MiB
    resp = await client.put("/big.bin", data=chunks(data, 256 * 1024))
    assert resp.status == 201
    assert store.objects["big.bin"].data == data
    assert store.calls["upload_part"] == 8
    budget = gateway_of(app).engine.budget
    assert budget.peak <= (upload.MAX_IN_FLIGHT + 1) * 5 * MiB
    assert budget.in_use == 0
    assert store.uploads == {}


async def test_a_multipart_put_on_s3_completes(aiohttp_client: Any, store: ObjectStore) -> None:
    client = await client_for(aiohttp_client, store, engine=EngineSettings(write_part_size=5))
    data = bytes(range(256)) * (48 * 1024)  # 12 MiB: three parts
    resp = await client.put("/big.bin", data=chunks(data), headers={
        "X-Expected-Entity-Length": str(len(data))})
    assert resp.status == 201
    assert await read(store, "big.bin") == data
    assert await store.list_uploads("") == []


async def test_expect_100_continue_gets_its_100_before_the_body(store: ObjectStore) -> None:
    async with serving(app_for(store)) as url:
        port = port_of(url)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"PUT /continued.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        await writer.drain()
        interim = await reader.readuntil(b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100")
        writer.write(b"hello")
        await writer.drain()
        status, headers, _ = await read_reply(reader)
        writer.close()
        await writer.wait_closed()
        assert status == 201 and "etag" in headers
        assert await read(store, "continued.txt") == b"hello"


async def test_a_refused_put_is_answered_before_its_body_is_sent(store: ObjectStore) -> None:
    await store.put("kept.txt", b"version 1")
    async with serving(app_for(store)) as url:
        port = port_of(url)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"PUT /kept.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 9\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        await writer.drain()
        status, _, body = await read_reply(reader)  # no 100 first: the final answer
        writer.close()
        await writer.wait_closed()
        assert status == 403 and b"--allow-overwrite" in body
        assert await read(store, "kept.txt") == b"version 1"


# ---- a client that goes away ----------------------------------------------------------------


@pytest.mark.parametrize("cancellation", [True, False])
async def test_a_client_that_disconnects_mid_put_leaves_no_object_and_no_upload(
    store: ObjectStore, cancellation: bool
) -> None:
    if isinstance(store, MemoryStore):
        store.put_sync("big.bin", b"")  # a placeholder: the PUT would replace it
    app = app_for(store, engine=EngineSettings(write_part_size=5))
    async with serving(app, handler_cancellation=cancellation) as url:
        port = port_of(url)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"PUT /big.bin HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        piece = b"z" * MiB
        for _ in range(12):  # more than two parts: a multipart upload is under way
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()

        async def uploading() -> bool:
            return bool(await store.list_uploads(""))

        await wait_for(uploading, "the multipart upload started")
        writer.transport.abort()  # vanish mid-body, as a crashed client does

        async def cleaned_up() -> bool:
            return not await store.list_uploads("") and gateway_of(app).engine.budget.in_use == 0

        await wait_for(cleaned_up, "the upload was aborted")
        if isinstance(store, MemoryStore):
            assert store.objects["big.bin"].data == b""  # the previous version is intact
            assert store.calls["abort_upload"] == 1
        else:
            assert await keys(store) == set()


# ---- locks and placeholders -------------------------------------------------------------------


async def lock(client: Any, path: str, **headers: str) -> str:
    resp = await client.request("LOCK", path, data=LOCK_FINDER, headers={
        "Content-Type": "text/xml", "Timeout": "Second-600", **headers})
    assert resp.status in (200, 201), await resp.text()
    return str(resp.headers["Lock-Token"]).strip("<>")


async def test_a_locked_object_needs_its_token(aiohttp_client: Any) -> None:
    store = MemoryStore()
    client = await client_for(aiohttp_client, store, policy=Policy(allow_overwrite=True))
    await client.put("/f", data=b"one")
    token = await lock(client, "/f", Depth="0")
    refused = await client.put("/f", data=b"two")
    assert refused.status == 423
    assert store.objects["f"].data == b"one"
    ok = await client.put("/f", data=b"two", headers={"If": f"(<{token}>)"})
    assert ok.status == 204
    assert store.objects["f"].data == b"two"


async def test_an_object_created_under_a_lock_is_rewritable_until_unlock(
    aiohttp_client: Any,
) -> None:
    store = MemoryStore()
    client = await client_for(aiohttp_client, store)
    token = await lock(client, "/office.docx", Depth="0")  # LOCK on an unmapped URL
    if_header = {"If": f"(<{token}>)"}
    assert (await client.put("/office.docx", data=b"v1", headers=if_header)).status == 204
    assert (await client.put("/office.docx", data=b"v2", headers=if_header)).status == 204
    unlocked = await client.request("UNLOCK", "/office.docx",
                                    headers={"Lock-Token": f"<{token}>"})
    assert unlocked.status == 204
    after = await client.put("/office.docx", data=b"v3")
    assert after.status == 403 and "--allow-overwrite" in await after.text()
    assert store.objects["office.docx"].data == b"v2"


async def test_a_token_does_not_make_any_object_rewritable(aiohttp_client: Any) -> None:
    store = MemoryStore()
    store.put_sync("old.txt", b"data written long ago")
    client = await client_for(aiohttp_client, store)
    token = await lock(client, "/old.txt", Depth="0")
    resp = await client.put("/old.txt", data=b"x", headers={"If": f"(<{token}>)"})
    assert resp.status == 403
    assert store.objects["old.txt"].data == b"data written long ago"


async def finder_copy_in(client: Any, path: str, data: bytes) -> str:
    """Finder's sequence for every file it copies in; returns the final ETag."""
    assert (await client.put(path, data=b"")).status == 201
    token = await lock(client, path, Depth="0")
    put = await client.put(path, data=chunks(data), headers={
        "If": f"(<{token}>)", "X-Expected-Entity-Length": str(len(data)),
        "Content-Type": "application/octet-stream"})
    assert put.status == 204, await put.text()
    found = await client.request("PROPFIND", path, headers={"Depth": "0"}, data=(
        '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
        "<D:getlastmodified/><D:getetag/></D:prop></D:propfind>"))
    assert found.status == 207
    assert put.headers["ETag"] in await found.text()
    unlock = await client.request("UNLOCK", path, headers={"Lock-Token": f"<{token}>"})
    assert unlock.status == 204
    return str(put.headers["ETag"])


async def test_finder_copy_in_works_in_default_mode(aiohttp_client: Any, store: ObjectStore
                                                    ) -> None:
    client = await client_for(aiohttp_client, store)
    data = b"photo bytes " * 10_000
    await finder_copy_in(client, "/._photo.jpg", b"\x00\x05\x16\x07AppleDouble" * 300)
    etag = await finder_copy_in(client, "/photo.jpg", data)
    assert await read(store, "photo.jpg") == data
    assert await keys(store) == {"photo.jpg"}  # the AppleDouble file stayed out
    got = await client.get("/photo.jpg")
    assert got.headers["ETag"] == etag
    meta = await client.get("/._photo.jpg")
    assert meta.status == 200 and (await meta.read()).startswith(b"\x00\x05\x16\x07")


async def test_windows_copy_in_works_in_default_mode(aiohttp_client: Any, store: ObjectStore
                                                     ) -> None:
    client = await client_for(aiohttp_client, store)
    path = "/Report%202026.docx"
    assert (await client.request("PROPFIND", path, headers={"Depth": "0"})).status == 404
    assert (await client.put(path, data=b"")).status == 201
    resp = await client.request("LOCK", path, data=LOCK_FINDER.replace(
        "http://www.apple.com/webdav_fs/", "DESKTOP\\user"), headers={"Timeout": "Second-3600"})
    assert resp.status == 200
    token = resp.headers["Lock-Token"].strip("<>")
    proppatch = (
        '<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" '
        'xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>'
        "<Z:Win32CreationTime>Thu, 01 Jan 2026 10:00:00 GMT</Z:Win32CreationTime>"
        "<Z:Win32LastAccessTime>Thu, 01 Jan 2026 10:00:00 GMT</Z:Win32LastAccessTime>"
        "<Z:Win32LastModifiedTime>Thu, 01 Jan 2026 10:00:00 GMT</Z:Win32LastModifiedTime>"
        "<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>"
        "</D:prop></D:set></D:propertyupdate>"
    )
    if_header = {"If": f"(<{token}>)"}
    assert (await client.request("PROPPATCH", path, data=proppatch, headers=if_header)
            ).status == 207
    assert (await client.head(path)).status == 200
    put = await client.put(path, data=b"quarterly numbers", headers=if_header)
    assert put.status == 204
    assert (await client.request("PROPPATCH", path, data=proppatch, headers=if_header)
            ).status == 207
    unlock = await client.request("UNLOCK", path, headers={"Lock-Token": f"<{token}>"})
    assert unlock.status == 204
    assert await read(store, "Report 2026.docx") == b"quarterly numbers"


# ---- client noise -------------------------------------------------------------------------


async def test_client_noise_is_accepted_and_kept_out_of_the_store(
    aiohttp_client: Any, store: ObjectStore
) -> None:
    client = await client_for(aiohttp_client, store)
    assert (await client.request("MKCOL", "/album")).status == 201
    for name in ("._cover.jpg", ".DS_Store", "desktop.ini", "Thumbs.db"):
        resp = await client.put(f"/album/{name}", data=b"metadata")
        assert resp.status == 201
        got = await client.get(f"/album/{name}")
        assert got.status == 200 and await got.read() == b"metadata"
    assert await keys(store, "album/") <= {"album/"}
    listing = await client.request("PROPFIND", "/album/", headers={"Depth": "1"})
    assert "DS_Store" not in await listing.text()


async def test_probes_for_noise_not_held_are_404_without_a_store_call(
    aiohttp_client: Any,
) -> None:
    store = MemoryStore()
    client = await client_for(aiohttp_client, store)
    before = sum(store.calls.values())
    for name in ("._photo.jpg", ".DS_Store", ".localized", "desktop.ini"):
        assert (await client.request("PROPFIND", f"/{name}", headers={"Depth": "0"})
                ).status == 404
        assert (await client.get(f"/{name}")).status == 404
    assert sum(store.calls.values()) == before


async def test_noise_is_stored_when_the_share_says_so(aiohttp_client: Any) -> None:
    store = MemoryStore()
    client = await client_for(aiohttp_client, store, policy=Policy(store_client_noise=True))
    assert (await client.put("/.DS_Store", data=b"finder")).status == 201
    assert store.objects[".DS_Store"].data == b"finder"


# ---- the noise area: one per share, bounded as docs/SEMANTICS.md states -------------------
# 10-minute TTL, 16 MiB in total with 512 bytes counted per entry, bodies up to 1 MiB.

NOISE_TTL = 600.0
NOISE_TOTAL = 16 * MiB
NOISE_ENTRY = 512
NOISE_BODY = 1 * MiB


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def noise_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The clock the memory state store (where the noise area lives by default) reads for
    its TTLs; the event loop keeps the real one."""
    clock = Clock()
    monkeypatch.setattr(memory, "time", types.SimpleNamespace(monotonic=clock))
    return clock


async def status_of(client: Any, path: str) -> int:
    return int((await client.get(path)).status)


async def test_held_noise_is_per_share_and_bounded(aiohttp_client: Any) -> None:
    app = app_for(MemoryStore())
    client = await aiohttp_client(app)
    big = b"x" * (2 * MiB)
    assert (await client.put("/._huge", data=chunks(big))).status == 201  # body dropped
    found = await client.request("PROPFIND", "/._huge", headers={"Depth": "0"})
    assert found.status == 207
    assert (await client.get("/._huge")).status == 404
    area = share_of(app).noise
    assert await area.count() == 1


async def test_a_noise_body_up_to_1_mib_is_kept_and_a_larger_one_only_described(
    aiohttp_client: Any,
) -> None:
    client = await aiohttp_client(app_for(MemoryStore()))
    kept, dropped = b"k" * NOISE_BODY, b"d" * (NOISE_BODY + 1)
    assert (await client.put("/._kept", data=chunks(kept))).status == 201
    assert (await client.put("/._dropped", data=chunks(dropped))).status == 201
    got = await client.get("/._kept")
    assert got.status == 200 and await got.read() == kept
    assert await status_of(client, "/._dropped") == 404
    found = await client.request("PROPFIND", "/._dropped", headers={"Depth": "0"})
    assert found.status == 207
    [answer] = multistatus(await found.read()).values()
    assert answer.ok()["{DAV:}getcontentlength"].text == str(NOISE_BODY + 1)


async def test_held_noise_expires_after_ten_minutes(
    aiohttp_client: Any, noise_clock: Clock
) -> None:
    client = await aiohttp_client(app_for(MemoryStore()))
    assert (await client.put("/._photo.jpg", data=b"apple double")).status == 201
    noise_clock.now += NOISE_TTL - 1
    got = await client.get("/._photo.jpg")
    assert got.status == 200 and await got.read() == b"apple double"
    noise_clock.now += 2
    assert await status_of(client, "/._photo.jpg") == 404
    gone = await client.request("PROPFIND", "/._photo.jpg", headers={"Depth": "0"})
    assert gone.status == 404


async def test_the_noise_area_holds_16_mib_counting_512_bytes_per_entry(
    aiohttp_client: Any,
) -> None:
    store = MemoryStore()
    client = await aiohttp_client(app_for(store))
    # 16 entries whose bodies plus 512 bytes each fill the 16 MiB exactly.
    body = b"n" * (NOISE_TOTAL // 16 - NOISE_ENTRY)
    names = [f"/._file{i:02d}" for i in range(16)]
    for name in names:
        assert (await client.put(name, data=chunks(body))).status == 201
    for name in names:
        assert await status_of(client, name) == 200, f"{name} fits in the 16 MiB"
    # An empty file still costs its 512 bytes: the oldest entry makes room for it.
    assert (await client.put("/._empty", data=b"")).status == 201
    assert await status_of(client, "/._empty") == 200
    assert await status_of(client, names[0]) == 404
    for name in names[1:]:
        assert await status_of(client, name) == 200
    assert store.objects == {}


async def test_the_per_entry_charge_caps_the_number_of_entries(aiohttp_client: Any) -> None:
    app = app_for(MemoryStore())
    client = await aiohttp_client(app)
    area = share_of(app).noise
    most = NOISE_TOTAL // NOISE_ENTRY  # 32,768 empty files
    for i in range(most):
        await area.keep(f"._{i}", b"", 0, '"d41d8cd98f00b204e9800998ecf8427e"')
    assert await area.count() == most
    assert (await client.put("/._one.more", data=b"")).status == 201
    assert await area.count() == most
    assert await status_of(client, "/._one.more") == 200
    assert await area.get("._0") is None  # the oldest made room
    assert await area.get("._1") is not None


async def test_each_share_has_a_noise_area_of_its_own(aiohttp_client: Any) -> None:
    """Two shares of the same bucket and prefix: same keys, separate areas."""
    store = MemoryStore()
    app = app_for([store, store], mounts=("/one/", "/two/"))
    client = await aiohttp_client(app)
    assert (await client.put("/two/._kept", data=b"two's")).status == 201
    assert (await client.put("/one/._kept", data=b"one's")).status == 201
    assert await (await client.get("/two/._kept")).read() == b"two's"
    assert await (await client.get("/one/._kept")).read() == b"one's"
    assert (await client.put("/one/._only-in-one", data=b"x")).status == 201
    assert await status_of(client, "/two/._only-in-one") == 404
    # Filling share one's area past its cap evicts nothing from share two.
    body = b"n" * (NOISE_TOTAL // 16)
    for i in range(17):
        assert (await client.put(f"/one/._filler{i:02d}", data=chunks(body))).status == 201
    assert await status_of(client, "/one/._kept") == 404
    assert await (await client.get("/two/._kept")).read() == b"two's"
    areas = {share.mount: share.noise for share in gateway_of(app).shares}
    assert await areas["/two/"].count() == 1 and await areas["/one/"].count() < 17
    assert store.objects == {}

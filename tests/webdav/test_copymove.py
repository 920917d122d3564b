"""COPY and MOVE inside one share: Destination by path, Overwrite, Depth, and the policy
(MOVE of data needs --allow-rename; empty things move in O(1); targets follow the overwrite
rules)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import Upstream
from gateway.settings import Policy
from gateway.storage.base import ObjectStore
from tests.apps import ALL_FLAGS, app_for
from tests.memorystore import MemoryStore
from tests.webdav.davxml import multistatus
from tests.webdav.writing import LOCK_FINDER, keys, read, store_fixture

store = store_fixture("memory", "local", "moto")


async def arrange(store: ObjectStore, *names: str) -> None:
    for key in names:
        await store.put(key, b"" if key.endswith("/") else key.encode())


def dest(path: str, **headers: str) -> dict[str, str]:
    return {"Destination": f"http://127.0.0.1{path}", **headers}


async def contents(store: ObjectStore) -> dict[str, bytes]:
    """Every key in the store with its bytes: what a refusal leaves exactly as it was."""
    return {key: await read(store, key) for key in await keys(store)}


# ---- COPY ----------------------------------------------------------------------------------


async def test_copy_a_file_to_a_new_name_201(aiohttp_client: Any, store: ObjectStore) -> None:
    await arrange(store, "a.txt")
    client = await aiohttp_client(app_for(store))
    resp = await client.request("COPY", "/a.txt", headers=dest("/b.txt"))
    assert resp.status == 201
    assert await read(store, "b.txt") == b"a.txt"
    assert await read(store, "a.txt") == b"a.txt"
    assert await (await client.get("/b.txt")).read() == b"a.txt"


async def test_copy_onto_an_existing_file_follows_the_overwrite_rules(
    aiohttp_client: Any, store: ObjectStore
) -> None:
    await arrange(store, "a.txt", "b.txt")
    client = await aiohttp_client(app_for(store))
    before = await contents(store)
    refused = await client.request("COPY", "/a.txt", headers=dest("/b.txt"))
    assert refused.status == 403 and "--allow-overwrite" in await refused.text()
    assert await read(store, "b.txt") == b"b.txt"
    assert await contents(store) == before
    await store.put("empty.txt", b"")
    placeholder = await client.request("COPY", "/a.txt", headers=dest("/empty.txt"))
    assert placeholder.status == 204
    assert await read(store, "empty.txt") == b"a.txt"


async def test_copy_with_allow_overwrite_replaces_204(aiohttp_client: Any, store: ObjectStore
                                                      ) -> None:
    await arrange(store, "a.txt", "b.txt")
    client = await aiohttp_client(app_for(store, policy=Policy(allow_overwrite=True)))
    resp = await client.request("COPY", "/a.txt", headers=dest("/b.txt"))
    assert resp.status == 204
    assert await read(store, "b.txt") == b"a.txt"
    assert await (await client.get("/b.txt")).read() == b"a.txt"


async def test_overwrite_f_onto_an_existing_target_is_412(aiohttp_client: Any,
                                                          store: ObjectStore) -> None:
    await arrange(store, "a.txt", "b.txt")
    client = await aiohttp_client(app_for(store, policy=ALL_FLAGS))
    before = await contents(store)
    for method in ("COPY", "MOVE"):
        resp = await client.request(method, "/a.txt", headers=dest("/b.txt", Overwrite="F"))
        assert resp.status == 412
        assert await contents(store) == before, method
    assert await read(store, "b.txt") == b"b.txt"


async def test_copy_to_a_missing_parent_is_409(aiohttp_client: Any) -> None:
    store = MemoryStore()
    store.put_sync("a", b"x")
    client = await aiohttp_client(app_for(store))
    assert (await client.request("COPY", "/a", headers=dest("/no/where/a"))).status == 409
    assert set(store.objects) == {"a"}
    assert await contents(store) == {"a": b"x"}


async def test_copy_or_move_onto_itself_is_403(aiohttp_client: Any) -> None:
    store = MemoryStore()
    store.put_sync("a", b"x")
    client = await aiohttp_client(app_for(store, policy=ALL_FLAGS))
    for method in ("COPY", "MOVE"):
        assert (await client.request(method, "/a", headers=dest("/a"))).status == 403
    assert set(store.objects) == {"a"}
    assert await contents(store) == {"a": b"x"}


async def test_copy_of_nothing_is_404(aiohttp_client: Any) -> None:
    store = MemoryStore()
    client = await aiohttp_client(app_for(store))
    assert (await client.request("COPY", "/ghost", headers=dest("/b"))).status == 404
    assert await contents(store) == {}


async def test_copy_a_collection_copies_every_object_and_marker(
    aiohttp_client: Any, store: ObjectStore
) -> None:
    await arrange(store, "src/", "src/a", "src/sub/", "src/sub/b", "src2/x")
    client = await aiohttp_client(app_for(store))
    resp = await client.request("COPY", "/src/", headers=dest("/dst/"))
    assert resp.status == 201
    assert {"dst/", "dst/a", "dst/sub/", "dst/sub/b"} <= await keys(store, "dst/")
    assert await read(store, "dst/sub/b") == b"src/sub/b"
    assert {"src/a", "src/sub/b", "src2/x"} <= await keys(store)


async def test_copy_depth_0_copies_only_the_collection(aiohttp_client: Any, store: ObjectStore
                                                       ) -> None:
    await arrange(store, "src/", "src/a")
    client = await aiohttp_client(app_for(store))
    resp = await client.request("COPY", "/src/", headers=dest("/dst/", Depth="0"))
    assert resp.status == 201
    assert await keys(store, "dst/") == {"dst/"}


@pytest.mark.parametrize(("method", "depth"), [("COPY", "1"), ("MOVE", "0"), ("MOVE", "1")])
async def test_unsupported_depths_are_400(aiohttp_client: Any, method: str, depth: str) -> None:
    store = MemoryStore()
    store.put_sync("src/a", b"x")
    client = await aiohttp_client(app_for(store, policy=ALL_FLAGS))
    resp = await client.request(method, "/src/", headers=dest("/dst/", Depth=depth))
    assert resp.status == 400 and "Depth" in await resp.text()
    assert await contents(store) == {"src/a": b"x"}


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
async def test_a_collection_into_itself_is_403_and_changes_nothing(aiohttp_client: Any,
                                                                    method: str) -> None:
    store = MemoryStore()
    store.put_sync("a/", b"")
    store.put_sync("a/x", b"x")
    client = await aiohttp_client(app_for(store, policy=ALL_FLAGS))
    resp = await client.request(method, "/a/", headers=dest("/a/b/"))
    assert resp.status == 403 and "itself" in await resp.text()
    assert set(store.objects) == {"a/", "a/x"}
    assert await contents(store) == {"a/": b"", "a/x": b"x"}


async def test_a_target_that_contains_the_source_is_403(aiohttp_client: Any) -> None:
    store = MemoryStore()
    store.put_sync("a/b/c", b"x")
    client = await aiohttp_client(app_for(store, policy=ALL_FLAGS))
    resp = await client.request("MOVE", "/a/b/", headers=dest("/a/"))
    assert resp.status == 403
    assert set(store.objects) == {"a/b/c"}
    assert await contents(store) == {"a/b/c": b"x"}


async def test_replacing_a_collection_needs_allow_delete(aiohttp_client: Any, store: ObjectStore
                                                         ) -> None:
    await arrange(store, "src/", "src/new", "dst/", "dst/old")
    client = await aiohttp_client(app_for(store, policy=Policy(allow_overwrite=True)))
    before = await contents(store)
    refused = await client.request("COPY", "/src/", headers=dest("/dst/"))
    assert refused.status == 403 and "--allow-delete" in await refused.text()
    assert "dst/old" in await keys(store)
    assert await contents(store) == before
    client2 = await aiohttp_client(app_for(store, policy=Policy(allow_delete=True)))
    resp = await client2.request("COPY", "/src/", headers=dest("/dst/"))
    assert resp.status == 204
    assert "dst/old" not in await keys(store)
    assert "dst/new" in await keys(store)


async def test_collection_members_that_fail_to_copy_are_listed_in_a_207(aiohttp_client: Any
                                                                        ) -> None:
    store = MemoryStore()
    for key in ("src/", "src/a", "src/b"):
        store.put_sync(key, b"x")
    store.fail("copy", Upstream("copy refused"), key="src/b")
    client = await aiohttp_client(app_for(store))
    resp = await client.request("COPY", "/src/", headers=dest("/dst/"))
    assert resp.status == 207
    assert list(multistatus(await resp.read())) == ["/src/b"]


# ---- Destination ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "forwarded"),
    [
        ("/b", None),
        ("https://127.0.0.1/b?x=1", None),  # scheme and port: a TLS proxy rewrote them
        ("http://dav.example.com/b", "dav.example.com"),  # Host rewritten, original forwarded
        ("http://DAV.example.com:443/b", "proxy.internal, dav.example.com"),
    ],
)
async def test_destination_on_this_server_is_compared_by_path(
    aiohttp_client: Any, target: str, forwarded: str | None
) -> None:
    store = MemoryStore()
    store.put_sync("a", b"x")
    client = await aiohttp_client(app_for(store))
    headers = {"Destination": target}
    if forwarded:
        headers["X-Forwarded-Host"] = forwarded
    resp = await client.request("COPY", "/a", headers=headers)
    assert resp.status == 201
    assert store.objects["b"].data == b"x"


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
async def test_destination_on_another_server_is_refused_and_changes_nothing(
    aiohttp_client: Any, method: str
) -> None:
    store = MemoryStore()
    store.put_sync("a", b"")
    client = await aiohttp_client(app_for(store))
    resp = await client.request(method, "/a", headers={"Destination": "http://evil.example/b"})
    assert resp.status == 403
    assert "another server (evil.example)" in await resp.text()
    assert set(store.objects) == {"a"}
    assert await contents(store) == {"a": b""}


async def test_destination_keeps_the_share_mount(aiohttp_client: Any) -> None:
    store = MemoryStore()
    store.put_sync("a", b"x")
    client = await aiohttp_client(app_for(store, mount="/dav/"))
    ok = await client.request("COPY", "/dav/a", headers=dest("/dav/sub%20dir%E2%82%AC"))
    assert ok.status == 201
    assert store.objects["sub dir€"].data == b"x"
    before = await contents(store)
    outside = await client.request("COPY", "/dav/a", headers=dest("/elsewhere/a"))
    assert outside.status == 403 and "outside this share" in await outside.text()
    assert await contents(store) == before


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 400),
        ({"Destination": "http://h/a/../../etc/passwd"}, 400),
        ({"Destination": "http://h/%2e%2e/x"}, 400),
        ({"Destination": "relative/path"}, 400),
        ({"Destination": "/b", "Overwrite": "maybe"}, 400),
    ],
)
async def test_bad_destination_and_overwrite_headers_are_400(
    aiohttp_client: Any, headers: dict[str, str], status: int
) -> None:
    store = MemoryStore()
    store.put_sync("a", b"x")
    client = await aiohttp_client(app_for(store, policy=ALL_FLAGS))
    resp = await client.request("MOVE", "/a", headers=headers)
    assert resp.status == status
    assert set(store.objects) == {"a"}
    assert await contents(store) == {"a": b"x"}


# ---- MOVE ------------------------------------------------------------------------------------


async def test_move_of_a_file_with_data_needs_allow_rename(aiohttp_client: Any,
                                                           store: ObjectStore) -> None:
    await arrange(store, "a.txt")
    client = await aiohttp_client(app_for(store))
    resp = await client.request("MOVE", "/a.txt", headers=dest("/b.txt"))
    assert resp.status == 403
    text = await resp.text()
    assert "--allow-rename" in text and "not atomic" in text
    assert await keys(store) == {"a.txt"}
    assert await contents(store) == {"a.txt": b"a.txt"}


async def test_move_with_allow_rename_201_and_seen_at_once(aiohttp_client: Any,
                                                          store: ObjectStore) -> None:
    await arrange(store, "a.txt")
    client = await aiohttp_client(app_for(store, policy=Policy(allow_rename=True)))
    assert (await client.get("/a.txt")).status == 200  # cached
    resp = await client.request("MOVE", "/a.txt", headers=dest("/b.txt"))
    assert resp.status == 201
    assert await keys(store) == {"b.txt"}
    assert (await client.get("/a.txt")).status == 404
    assert await (await client.get("/b.txt")).read() == b"a.txt"


async def test_move_onto_an_existing_file_needs_both_flags(aiohttp_client: Any) -> None:
    store = MemoryStore()
    store.put_sync("a", b"new")
    store.put_sync("b", b"old")
    client = await aiohttp_client(app_for(store, policy=Policy(allow_rename=True)))
    refused = await client.request("MOVE", "/a", headers=dest("/b"))
    assert refused.status == 403 and "--allow-overwrite" in await refused.text()
    assert await contents(store) == {"a": b"new", "b": b"old"}
    client2 = await aiohttp_client(app_for(store, policy=ALL_FLAGS))
    resp = await client2.request("MOVE", "/a", headers=dest("/b"))
    assert resp.status == 204
    assert set(store.objects) == {"b"} and store.objects["b"].data == b"new"


async def test_windows_new_text_document(aiohttp_client: Any, store: ObjectStore) -> None:
    """Explorer's "New > Text Document": PUT 0 bytes, then MOVE with Overwrite: F."""
    client = await aiohttp_client(app_for(store))
    assert (await client.put("/New Text Document.txt", data=b"")).status == 201
    resp = await client.request("MOVE", "/New%20Text%20Document.txt",
                                headers=dest("/notes.txt", Overwrite="F"))
    assert resp.status == 201
    assert await keys(store) == {"notes.txt"}
    assert (await client.put("/notes.txt", data=b"typed text")).status == 204  # placeholder
    assert await read(store, "notes.txt") == b"typed text"


async def test_new_folder_is_mkcol_then_move(aiohttp_client: Any, store: ObjectStore) -> None:
    client = await aiohttp_client(app_for(store))
    assert (await client.request("MKCOL", "/untitled%20folder")).status == 201
    resp = await client.request("MOVE", "/untitled%20folder/", headers=dest("/Holidays/"))
    assert resp.status == 201
    assert await keys(store) == {"Holidays/"}
    assert (await client.request("PROPFIND", "/Holidays/", headers={"Depth": "0"})
            ).status == 207
    assert (await client.request("PROPFIND", "/untitled%20folder/", headers={"Depth": "0"})
            ).status == 404


async def test_moving_empty_things_copies_no_data(aiohttp_client: Any) -> None:
    store = MemoryStore()
    store.put_sync("empty/", b"")
    store.put_sync("zero.bin", b"")
    client = await aiohttp_client(app_for(store))
    assert (await client.request("MOVE", "/empty/", headers=dest("/moved/"))).status == 201
    assert (await client.request("MOVE", "/zero.bin", headers=dest("/z.bin"))).status == 201
    assert set(store.objects) == {"moved/", "z.bin"}
    assert store.calls["copy"] == 0


async def test_move_of_a_collection_with_content_needs_allow_rename(
    aiohttp_client: Any, store: ObjectStore
) -> None:
    await arrange(store, "d/", "d/a", "d/sub/b", "d2/x", "d-x")
    client = await aiohttp_client(app_for(store))
    before = await contents(store)
    refused = await client.request("MOVE", "/d/", headers=dest("/e/"))
    assert refused.status == 403 and "--allow-rename" in await refused.text()
    assert {"d/a", "d/sub/b"} <= await keys(store)
    assert await contents(store) == before
    client2 = await aiohttp_client(app_for(store, policy=Policy(allow_rename=True)))
    resp = await client2.request("MOVE", "/d", headers=dest("/e"))
    assert resp.status == 201
    left = await keys(store)
    assert {"e/", "e/a", "e/sub/b", "d2/x", "d-x"} <= left
    assert not any(k.startswith("d/") for k in left)


async def test_a_partly_failed_move_is_207_and_keeps_what_failed(aiohttp_client: Any) -> None:
    store = MemoryStore()
    for key in ("d/", "d/a", "d/b"):
        store.put_sync(key, b"x")
    store.fail("copy", Upstream("copy refused"), key="d/b")
    client = await aiohttp_client(app_for(store, policy=Policy(allow_rename=True)))
    resp = await client.request("MOVE", "/d/", headers=dest("/e/"))
    assert resp.status == 207
    assert list(multistatus(await resp.read())) == ["/d/b"]
    assert set(store.objects) == {"d/b", "e/", "e/a"}


async def test_a_locked_source_cannot_be_moved_without_its_token(aiohttp_client: Any) -> None:
    store = MemoryStore()
    store.put_sync("a", b"")
    client = await aiohttp_client(app_for(store))
    lock = await client.request("LOCK", "/a", data=LOCK_FINDER, headers={"Depth": "0"})
    token = lock.headers["Lock-Token"]
    assert (await client.request("MOVE", "/a", headers=dest("/b"))).status == 423
    assert set(store.objects) == {"a"}
    assert await contents(store) == {"a": b""}
    ok = await client.request("MOVE", "/a", headers=dest("/b", If=f"({token})"))
    assert ok.status == 201
    assert set(store.objects) == {"b"}


async def test_read_only_refuses_copy_and_move(aiohttp_client: Any) -> None:
    store = MemoryStore()
    store.put_sync("a", b"")
    client = await aiohttp_client(app_for(store, policy=Policy(read_only=True)))
    for method in ("COPY", "MOVE"):
        resp = await client.request(method, "/a", headers=dest("/b"))
        assert resp.status == 403 and "--read-only" in await resp.text()
    assert set(store.objects) == {"a"}
    assert await contents(store) == {"a": b""}


async def test_noise_moves_inside_the_noise_area(aiohttp_client: Any) -> None:
    store = MemoryStore()
    client = await aiohttp_client(app_for(store))
    await client.put("/._draft", data=b"apple double")
    assert (await client.request("MOVE", "/._draft", headers=dest("/._final"))).status == 201
    assert (await client.get("/._final")).status == 200
    assert (await client.get("/._draft")).status == 404
    assert store.objects == {}

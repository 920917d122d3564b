"""Key filters through every method, on the in-memory store: a hidden key does not exist
for any client (GET, HEAD, PROPFIND, HTML and JSON listings), a directory made only of
hidden keys does not either, a name the filters hide cannot be created (PUT, MKCOL, COPY,
MOVE, LOCK: 403 naming the filter), and tree operations touch only visible keys."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.settings import Policy
from tests.apps import app_for
from tests.memorystore import MemoryStore
from tests.webdav.davxml import multistatus
from tests.webdav.writing import LOCK_FINDER

FILTERED = Policy(allow_overwrite=True, allow_delete=True, allow_rename=True,
                  exclude=("**/*.secret", "private"))
KEYS = {
    "pub.txt": b"public",
    "a.secret": b"hidden-1",
    "docs/readme.txt": b"readme",
    "docs/x.secret": b"hidden-2",
    "private/": b"",
    "private/plan.txt": b"hidden-3",
    "only-hidden/k.secret": b"hidden-4",
    "mixed/": b"",
    "mixed/v.txt": b"visible",
    "mixed/h.secret": b"hidden-5",
}
HIDDEN_PATHS = ["/a.secret", "/docs/x.secret", "/private/plan.txt", "/private/",
                "/only-hidden/", "/only-hidden/k.secret"]


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    for key, data in KEYS.items():
        s.put_sync(key, data)
    return s


@pytest.fixture
async def client(aiohttp_client: Any, store: MemoryStore) -> Any:
    return await aiohttp_client(app_for(store, policy=FILTERED))


def hidden_words(text: str) -> list[str]:
    return [w for w in ("secret", "private", "only-hidden", "plan.txt", "hidden-") if w in text]


@pytest.mark.parametrize("path", HIDDEN_PATHS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_get_and_head_of_a_hidden_key_are_404(client: Any, method: str, path: str
                                                    ) -> None:
    resp = await client.request(method, path)
    assert resp.status == 404
    assert "hidden-" not in await resp.text()  # no byte of it


@pytest.mark.parametrize("path", [*HIDDEN_PATHS, "/private", "/only-hidden"])
@pytest.mark.parametrize("depth", ["0", "1"])
async def test_propfind_of_a_hidden_key_is_404(client: Any, depth: str, path: str) -> None:
    resp = await client.request("PROPFIND", path, headers={"Depth": depth})
    assert resp.status == 404


async def test_propfind_lists_only_visible_keys(client: Any) -> None:
    resp = await client.request("PROPFIND", "/", headers={"Depth": "1"})
    assert resp.status == 207
    assert set(multistatus(await resp.read())) == {"/", "/pub.txt", "/docs/", "/mixed/"}
    resp = await client.request("PROPFIND", "/mixed/", headers={"Depth": "1"})
    assert set(multistatus(await resp.read())) == {"/mixed/", "/mixed/v.txt"}


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
async def test_listings_show_only_visible_keys(client: Any, accept: str) -> None:
    for path in ("/", "/docs/", "/mixed/"):
        resp = await client.get(path, headers={"Accept": accept})
        assert resp.status == 200
        text = await resp.text()
        assert hidden_words(text) == [], (path, text)
    text = await (await client.get("/", headers={"Accept": accept})).text()
    assert "pub.txt" in text and "docs" in text and "mixed" in text


@pytest.mark.parametrize("path", ["/new.secret", "/docs/n.secret"])
async def test_put_of_a_hidden_name_is_403_naming_the_filter(
    client: Any, store: MemoryStore, path: str
) -> None:
    resp = await client.put(path, data=b"x")
    assert resp.status == 403
    assert "exclude '**/*.secret'" in await resp.text()
    assert path.lstrip("/") not in store.objects


async def test_put_over_a_hidden_key_is_403_and_leaves_it(client: Any, store: MemoryStore
                                                          ) -> None:
    resp = await client.put("/a.secret", data=b"replaced")
    assert resp.status == 403
    assert store.objects["a.secret"].data == b"hidden-1"


@pytest.mark.parametrize(("path", "named"), [("/private/", "exclude 'private'"),
                                             ("/box.secret/", "exclude '**/*.secret'")])
async def test_mkcol_of_a_hidden_name_is_403(client: Any, store: MemoryStore, path: str,
                                             named: str) -> None:
    resp = await client.request("MKCOL", path)
    assert resp.status == 403 and named in await resp.text()
    assert "box.secret/" not in store.objects


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
async def test_copy_or_move_onto_a_hidden_name_is_403(client: Any, store: MemoryStore,
                                                      method: str) -> None:
    resp = await client.request(method, "/pub.txt",
                                headers={"Destination": "/pub.secret", "Overwrite": "T"})
    assert resp.status == 403 and "exclude '**/*.secret'" in await resp.text()
    assert "pub.secret" not in store.objects and "pub.txt" in store.objects
    resp = await client.request(method, "/mixed/",
                                headers={"Destination": "/m.secret/", "Overwrite": "T"})
    assert resp.status == 403
    assert not any(k.startswith("m.secret/") for k in store.objects)


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
async def test_copy_or_move_of_a_hidden_source_is_404(client: Any, method: str) -> None:
    for src in ("/a.secret", "/private/", "/only-hidden/"):
        resp = await client.request(method, src, headers={"Destination": "/elsewhere"})
        assert resp.status == 404, src


async def test_copy_of_a_collection_copies_only_visible_keys(client: Any, store: MemoryStore
                                                             ) -> None:
    resp = await client.request("COPY", "/mixed/", headers={"Destination": "/copied/"})
    assert resp.status == 201
    assert {k for k in store.objects if k.startswith("copied/")} == {"copied/", "copied/v.txt"}


async def test_move_of_a_collection_moves_only_visible_keys(client: Any, store: MemoryStore
                                                            ) -> None:
    resp = await client.request("MOVE", "/mixed/", headers={"Destination": "/moved/"})
    assert resp.status == 201
    assert {k for k in store.objects if k.startswith("moved/")} == {"moved/", "moved/v.txt"}
    # The hidden key stays, and so does the marker above it; the visible one went.
    assert {k for k in store.objects if k.startswith("mixed/")} == {"mixed/", "mixed/h.secret"}


async def test_delete_of_a_hidden_file_is_404(client: Any, store: MemoryStore) -> None:
    for path in ("/a.secret", "/private/plan.txt", "/private/", "/only-hidden/"):
        assert (await client.delete(path)).status == 404, path
    assert {"a.secret", "private/plan.txt", "only-hidden/k.secret"} <= set(store.objects)


async def test_delete_of_a_collection_touches_only_visible_keys(client: Any,
                                                                store: MemoryStore) -> None:
    resp = await client.delete("/docs/")
    assert resp.status == 204
    assert {k for k in store.objects if k.startswith("docs/")} == {"docs/x.secret"}
    # Made only of a hidden key now: gone for every client.
    assert (await client.request("PROPFIND", "/docs/", headers={"Depth": "0"})).status == 404
    resp = await client.delete("/mixed/")
    assert resp.status == 204
    assert {k for k in store.objects if k.startswith("mixed/")} == {"mixed/", "mixed/h.secret"}


@pytest.mark.parametrize("path", ["/a.secret", "/new.secret"])
async def test_lock_of_a_hidden_name_creates_nothing(client: Any, store: MemoryStore,
                                                     path: str) -> None:
    resp = await client.request("LOCK", path, data=LOCK_FINDER, headers={"Depth": "0"})
    assert resp.status == 403
    assert "exclude '**/*.secret'" in await resp.text()
    assert "new.secret" not in store.objects
    assert store.objects["a.secret"].data == b"hidden-1"


async def test_an_include_shows_one_tree(aiohttp_client: Any, store: MemoryStore) -> None:
    policy = Policy(include=("docs",))
    client = await aiohttp_client(app_for(store, policy=policy))
    resp = await client.request("PROPFIND", "/", headers={"Depth": "1"})
    assert set(multistatus(await resp.read())) == {"/", "/docs/"}
    assert (await client.get("/pub.txt")).status == 404
    assert (await client.get("/docs/x.secret")).status == 200
    resp = await client.request("MKCOL", "/other/")
    assert resp.status == 403 and "include 'docs'" in await resp.text()


async def test_a_filter_regex_hides_other_keys_and_markers(aiohttp_client: Any) -> None:
    store = MemoryStore()
    for key in ("t/a.csv", "t/b.txt", "u/", "u/c.txt", "d.csv"):
        store.put_sync(key, b"x")
    client = await aiohttp_client(app_for(store, policy=Policy(filter=r"\.csv$")))
    resp = await client.request("PROPFIND", "/", headers={"Depth": "1"})
    # t/ holds a visible key (found by a bounded listing); u/ holds none, its marker is
    # hidden by the filter like any key.
    assert set(multistatus(await resp.read())) == {"/", "/t/", "/d.csv"}
    assert (await client.get("/t/b.txt")).status == 404
    resp = await client.request("MKCOL", "/v/")
    assert resp.status == 403 and r"filter '\\.csv$'" in await resp.text()


async def test_a_jail_keeps_the_share_filters(aiohttp_client: Any) -> None:
    """The filters apply to the key after the SHARE's prefix, whatever a jail adds."""
    from gateway.fs.mounts import jailed
    from gateway.fs.paths import DavPath
    from tests.apps import share_of

    store = MemoryStore()
    store.put_sync("home/a.txt", b"x")
    store.put_sync("home/b.secret", b"x")
    app = app_for(store, policy=Policy(exclude=("home/b.secret",)))
    share = jailed(share_of(app), "home/")
    assert not share.file_hidden(DavPath(("a.txt",)))
    assert share.file_hidden(DavPath(("b.secret",)))


async def test_directories_judged_by_name_cost_no_store_call(aiohttp_client: Any) -> None:
    store = MemoryStore()
    for i in range(20):
        store.put_sync(f"other{i}/f.txt", b"x")
    store.put_sync("docs/a.txt", b"x")
    client = await aiohttp_client(app_for(store, policy=Policy(include=("docs",))))
    before = store.calls["list"]
    resp = await client.request("PROPFIND", "/", headers={"Depth": "1"})
    assert set(multistatus(await resp.read())) == {"/", "/docs/"}
    assert store.calls["list"] - before == 1  # the listing itself, no probe


async def test_a_probe_reads_at_most_one_page_and_fails_closed(aiohttp_client: Any) -> None:
    """A directory whose first 1000 keys are hidden is not listed, even if a visible key
    follows: the probe never reads a whole tree (docs/SEMANTICS.md, Key filters). The
    visible key is still served by its path."""
    store = MemoryStore()
    for i in range(1000):
        store.put_sync(f"big/{i:04}.tmp", b"")
    store.put_sync("big/zz.txt", b"visible")
    store.put_sync("small/a.tmp", b"")
    store.put_sync("small/b.txt", b"visible")
    client = await aiohttp_client(app_for(store, policy=Policy(exclude=("**/*.tmp",))))
    before = store.calls["list"]
    resp = await client.request("PROPFIND", "/", headers={"Depth": "1"})
    assert set(multistatus(await resp.read())) == {"/", "/small/"}
    assert store.calls["list"] - before == 3  # the listing and one probe per directory
    assert await (await client.get("/big/zz.txt")).read() == b"visible"

"""Modification times through WebDAV (issue 12, point 5): ``X-OC-Mtime`` on PUT, Windows'
PROPPATCH of ``Win32LastModifiedTime`` on a placeholder carried into the PUT that fills it
under the lock, a PROPPATCH of the time on a file with data refused unless it already
matches, and listings that show stored times without a HEAD per object."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import build_gateway, make_app
from gateway.settings import EngineSettings
from gateway.state import MemoryState
from tests.apps import ALL_FLAGS, app_for, settings_for
from tests.memorystore import MemoryStore
from tests.webdav.davxml import D, lock_body, multistatus, propfind_body

MS = "{urn:schemas-microsoft-com:}"
WHEN = 1_588_748_889  # Wed, 06 May 2020 07:08:09 GMT
SHOWN = "Wed, 06 May 2020 07:08:09 GMT"
OTHER = "Thu, 07 May 2020 00:00:00 GMT"
RECORD = "{urn:bucketdav:}mtime"  # the gateway's own record of a version's time


def windows_body(when: str = SHOWN) -> str:
    """What the Mini-Redirector sends around a copy-in."""
    return (
        '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>'
        f"<Z:Win32CreationTime>{when}</Z:Win32CreationTime>"
        f"<Z:Win32LastAccessTime>{when}</Z:Win32LastAccessTime>"
        f"<Z:Win32LastModifiedTime>{when}</Z:Win32LastModifiedTime>"
        "<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>"
        "</D:prop></D:set></D:propertyupdate>"
    )


def dav_time(when: str) -> str:
    return ('<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
            f"<D:getlastmodified>{when}</D:getlastmodified></D:prop></D:set>"
            "</D:propertyupdate>")


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.put_sync("doc.txt", b"data")
    return store


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, store: MemoryStore) -> TestClient:
    return await aiohttp_client(app_for(store))


async def lastmodified(client: TestClient, path: str, depth: str = "0") -> dict[str, str]:
    resp = await client.request("PROPFIND", path, headers={"Depth": depth},
                                data=propfind_body(D + "getlastmodified"))
    assert resp.status == 207
    return {href: answer.ok()[D + "getlastmodified"].text or ""
            for href, answer in multistatus(await resp.read()).items()
            if D + "getlastmodified" in answer.ok()}


async def test_x_oc_mtime_is_stored_at_creation_and_shown_everywhere(
    client: TestClient, store: MemoryStore
) -> None:
    resp = await client.put("/new.txt", data=b"hello", headers={"X-OC-Mtime": str(WHEN)})
    assert resp.status == 201
    assert resp.headers["X-OC-MTime"] == "accepted"
    assert resp.headers["Last-Modified"] == SHOWN
    assert store.objects["new.txt"].info.mtime == WHEN  # x-amz-meta-mtime on S3
    assert (await client.head("/new.txt")).headers["Last-Modified"] == SHOWN
    assert (await client.get("/new.txt")).headers["Last-Modified"] == SHOWN
    assert (await lastmodified(client, "/new.txt"))["/new.txt"] == SHOWN
    assert (await lastmodified(client, "/", "1"))["/new.txt"] == SHOWN
    listing = await (await client.get("/", headers={"Accept": "application/json"})).json()
    (entry,) = [e for e in listing["entries"] if e["name"] == "new.txt"]
    assert entry["modified"].startswith("2020-05-06T07:08:09")


async def test_a_fractional_x_oc_mtime_is_kept_whole(client: TestClient, store: MemoryStore
                                                     ) -> None:
    resp = await client.put("/f.txt", data=b"x", headers={"X-OC-Mtime": f"{WHEN}.75"})
    assert resp.status == 201
    assert store.objects["f.txt"].info.mtime == WHEN + 0.75
    assert resp.headers["Last-Modified"] == SHOWN  # HTTP dates have whole seconds


@pytest.mark.parametrize("value", ["yesterday", "nan", "1e30", ""])
async def test_a_malformed_x_oc_mtime_is_a_400_and_nothing_is_written(
    client: TestClient, store: MemoryStore, value: str
) -> None:
    resp = await client.put("/bad.txt", data=b"x", headers={"X-OC-Mtime": value})
    assert resp.status == 400
    assert "X-OC-Mtime" in await resp.text()
    assert "bad.txt" not in store.objects


async def test_a_listing_of_another_process_shows_the_time_without_a_head(
    aiohttp_client: AiohttpClient, store: MemoryStore
) -> None:
    """S3 listings carry no user metadata: the time is found in the state store the
    processes share, by the object's ETag, not by one HEAD per listed object."""
    state = MemoryState()
    settings = settings_for(policy=ALL_FLAGS, engine=EngineSettings(metadata_ttl=0.001))
    one = await aiohttp_client(make_app(build_gateway(settings, [store], state)))
    two = await aiohttp_client(make_app(build_gateway(settings, [store], state)))
    assert (await one.request("MKCOL", "/d/")).status == 201
    resp = await one.put("/d/n.txt", data=b"hello", headers={"X-OC-Mtime": str(WHEN)})
    assert resp.status == 201
    heads = store.calls["head"]
    assert (await lastmodified(two, "/d/", "1"))["/d/n.txt"] == SHOWN
    assert store.calls["head"] == heads
    # The record is the gateway's own: never shown as a dead property, never settable.
    resp = await two.request("PROPFIND", "/d/n.txt", headers={"Depth": "0"})
    assert "urn:bucketdav:" not in await resp.text()
    resp = await two.request("PROPPATCH", "/d/n.txt", data=(
        '<D:propertyupdate xmlns:D="DAV:" xmlns:B="urn:bucketdav:"><D:set><D:prop>'
        "<B:mtime>1 x</B:mtime></D:prop></D:set></D:propertyupdate>"))
    assert multistatus(await resp.read())["/d/n.txt"].status_of(RECORD) == 403
    # Replaced behind the gateway's back: the old time is not shown for the new version.
    store.put_sync("d/n.txt", b"other bytes")
    shown = (await lastmodified(two, "/d/", "1"))["/d/n.txt"]
    assert shown != SHOWN


async def test_windows_copy_in_carries_the_time_into_the_locked_put(
    client: TestClient, store: MemoryStore
) -> None:
    """PUT 0 bytes, LOCK, PROPPATCH the Win32 times, PUT the data with the token,
    PROPPATCH again, UNLOCK: every PROPPATCH answers 200 per property and the object is
    created with the time."""
    assert (await client.put("/w.txt", data=b"")).status == 201
    lock = await client.request("LOCK", "/w.txt", data=lock_body(),
                                headers={"Timeout": "Second-3600"})
    token = lock.headers["Lock-Token"]
    held = {"If": f"({token})"}
    resp = await client.request("PROPPATCH", "/w.txt", data=windows_body(), headers=held)
    assert set(multistatus(await resp.read())["/w.txt"].by_status) == {200}
    assert store.objects["w.txt"].data == b""  # the placeholder is not rewritten
    assert (await lastmodified(client, "/w.txt"))["/w.txt"] == SHOWN
    resp = await client.put("/w.txt", data=b"the data", headers=held)
    assert resp.status == 204
    assert store.objects["w.txt"].info.mtime == WHEN
    resp = await client.request("PROPPATCH", "/w.txt", data=windows_body(), headers=held)
    assert set(multistatus(await resp.read())["/w.txt"].by_status) == {200}
    assert (await client.request("UNLOCK", "/w.txt", headers={"Lock-Token": token})
            ).status == 204
    assert (await client.get("/w.txt")).headers["Last-Modified"] == SHOWN
    assert (await lastmodified(client, "/", "1"))["/w.txt"] == SHOWN


async def test_the_time_of_a_file_with_data_is_not_rewritten(
    client: TestClient, store: MemoryStore
) -> None:
    before = store.objects["doc.txt"]
    puts = store.calls["put"] + store.calls["copy"]
    resp = await client.request("PROPPATCH", "/doc.txt", data=windows_body(OTHER))
    assert resp.status == 207
    answer = multistatus(await resp.read())["/doc.txt"]
    assert answer.status_of(MS + "Win32LastModifiedTime") == 403
    assert "not rewritten" in answer.descriptions[403]
    assert answer.status_of(MS + "Win32FileAttributes") == 424  # all or nothing
    resp = await client.request("PROPPATCH", "/doc.txt", data=dav_time(OTHER))
    assert multistatus(await resp.read())["/doc.txt"].status_of(D + "getlastmodified") == 403
    assert store.objects["doc.txt"] is before
    assert store.calls["put"] + store.calls["copy"] == puts
    # The time it already shows is accepted: nothing to change.
    shown = (await client.head("/doc.txt")).headers["Last-Modified"]
    resp = await client.request("PROPPATCH", "/doc.txt", data=windows_body(shown))
    assert set(multistatus(await resp.read())["/doc.txt"].by_status) == {200}
    resp = await client.request("PROPPATCH", "/doc.txt", data=dav_time(shown))
    assert multistatus(await resp.read())["/doc.txt"].status_of(D + "getlastmodified") == 200


async def test_a_collection_time_is_not_stored(client: TestClient) -> None:
    assert (await client.request("MKCOL", "/c/")).status == 201
    resp = await client.request("PROPPATCH", "/c/", data=windows_body())
    assert set(multistatus(await resp.read())["/c/"].by_status) == {200}  # Windows' 200
    resp = await client.request("PROPPATCH", "/c/", data=dav_time(SHOWN))
    assert multistatus(await resp.read())["/c/"].status_of(D + "getlastmodified") == 403

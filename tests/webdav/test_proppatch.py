"""PROPPATCH: Windows' Win32 properties are accepted, dead properties refused, atomically."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.settings import Policy
from tests.apps import app_for
from tests.memorystore import MemoryStore
from tests.webdav.davxml import D, lock_body, multistatus

MS = "{urn:schemas-microsoft-com:}"
WIN32 = ("Win32CreationTime", "Win32LastAccessTime", "Win32LastModifiedTime",
         "Win32FileAttributes")
# What the Mini-Redirector sends around every copy-in.
WINDOWS_BODY = (
    '<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" '
    'xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>'
    "<Z:Win32CreationTime>Mon, 01 Jan 2024 10:00:00 GMT</Z:Win32CreationTime>"
    "<Z:Win32LastAccessTime>Mon, 01 Jan 2024 10:00:00 GMT</Z:Win32LastAccessTime>"
    "<Z:Win32LastModifiedTime>Mon, 01 Jan 2024 10:00:00 GMT</Z:Win32LastModifiedTime>"
    "<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>"
    "</D:prop></D:set></D:propertyupdate>"
)


def update(*props: str, remove: tuple[str, ...] = ()) -> str:
    removed = f"<D:remove><D:prop>{''.join(remove)}</D:prop></D:remove>" if remove else ""
    return (f'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>{"".join(props)}'
            f"</D:prop></D:set>{removed}</D:propertyupdate>")


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.put_sync("doc.txt", b"data")
    store.put_sync("dir/x", b"x")
    return store


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, store: MemoryStore) -> TestClient:
    return await aiohttp_client(app_for(store))


async def proppatch(client: TestClient, path: str, body: str,
                    headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    resp = await client.request("PROPPATCH", path, data=body, headers=headers or {})
    return resp.status, await resp.read()


async def test_windows_win32_properties_get_200_each(client: TestClient, store: MemoryStore
                                                     ) -> None:
    before = dict(store.objects)
    status, body = await proppatch(client, "/doc.txt", WINDOWS_BODY)
    assert status == 207
    answer = multistatus(body)["/doc.txt"]
    assert set(answer.by_status) == {200}
    assert set(answer.ok()) == {MS + name for name in WIN32}
    assert store.objects == before  # accepted, not stored


async def test_win32_properties_on_a_collection(client: TestClient) -> None:
    status, body = await proppatch(client, "/dir", WINDOWS_BODY)
    assert status == 207
    assert set(multistatus(body)["/dir/"].by_status) == {200}


async def test_dead_properties_are_refused_and_the_rest_fails_with_them(
    client: TestClient
) -> None:
    body = update(
        '<Z:Win32FileAttributes xmlns:Z="urn:schemas-microsoft-com:">00000020'
        "</Z:Win32FileAttributes>",
        '<x:color xmlns:x="http://example.com/ns">red</x:color>',
        remove=('<a:finder xmlns:a="http://www.apple.com/webdav_fs/props/"/>',),
    )
    status, out = await proppatch(client, "/doc.txt", body)
    assert status == 207
    answer = multistatus(out)["/doc.txt"]
    assert set(answer.by_status[403]) == {
        "{http://example.com/ns}color", "{http://www.apple.com/webdav_fs/props/}finder"
    }
    assert "not stored" in answer.descriptions[403]
    assert set(answer.by_status[424]) == {MS + "Win32FileAttributes"}
    assert 200 not in answer.by_status


async def test_live_properties_are_protected(client: TestClient) -> None:
    status, out = await proppatch(client, "/doc.txt", update('<D:getetag>"x"</D:getetag>'))
    assert status == 207
    assert multistatus(out)["/doc.txt"].status_of(D + "getetag") == 403


async def test_a_missing_resource_is_a_404(client: TestClient) -> None:
    status, _ = await proppatch(client, "/nope", WINDOWS_BODY)
    assert status == 404


@pytest.mark.parametrize("body", ["", "<D:propfind xmlns:D='DAV:'/>", "<D:propertyupdate",
                                  "<D:propertyupdate xmlns:D='DAV:'/>"])
async def test_a_bad_body_is_a_400(client: TestClient, body: str) -> None:
    status, _ = await proppatch(client, "/doc.txt", body)
    assert status == 400


async def test_a_read_only_share_refuses_with_403_naming_the_flag(
    aiohttp_client: AiohttpClient, store: MemoryStore
) -> None:
    client = await aiohttp_client(app_for(store, policy=Policy(read_only=True)))
    resp = await client.request("PROPPATCH", "/doc.txt", data=WINDOWS_BODY)
    assert resp.status == 403
    assert "--read-only" in await resp.text()
    assert store.calls["head"] == 0


async def test_a_locked_resource_needs_the_token(client: TestClient) -> None:
    lock = await client.request("LOCK", "/doc.txt", data=lock_body(), headers={"Depth": "0"})
    token = lock.headers["Lock-Token"]
    status, _ = await proppatch(client, "/doc.txt", WINDOWS_BODY)
    assert status == 423
    status, _ = await proppatch(client, "/doc.txt", WINDOWS_BODY, {"If": f"({token})"})
    assert status == 207

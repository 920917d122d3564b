"""PROPPATCH: Windows' Win32 properties are accepted, dead properties stored (in the state
store) and returned by PROPFIND, atomically; they follow COPY, MOVE and DELETE."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from lxml import etree
from pytest_aiohttp import AiohttpClient

from gateway.app import make_app
from gateway.settings import Policy
from gateway.state import PROPS_MAX_BYTES
from tests.apps import ALL_FLAGS, app_for, gateway_for, gateway_of
from tests.memorystore import MemoryStore
from tests.webdav.davxml import D, lock_body, multistatus, propfind_body
from tests.webdav.flakystate import FlakyState

MS = "{urn:schemas-microsoft-com:}"
NS = "http://example.com/ns"
COLOR = "{http://example.com/ns}color"
SIZE = "{http://example.com/ns}size"
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


async def props_of(client: TestClient, path: str, *names: str) -> dict[str, etree._Element]:
    """The properties among ``names`` that PROPFIND Depth 0 finds on ``path``."""
    resp = await client.request("PROPFIND", path, data=propfind_body(*names),
                                headers={"Depth": "0"})
    assert resp.status == 207
    (answer,) = multistatus(await resp.read()).values()
    return answer.ok()


def color(value: str) -> str:
    return f'<x:color xmlns:x="{NS}">{value}</x:color>'


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
    # On the zero-byte placeholder Windows makes first (its time: test_mtime.py).
    store.put_sync("new.txt", b"")
    before = dict(store.objects)
    status, body = await proppatch(client, "/new.txt", WINDOWS_BODY)
    assert status == 207
    answer = multistatus(body)["/new.txt"]
    assert set(answer.by_status) == {200}
    assert set(answer.ok()) == {MS + name for name in WIN32}
    assert store.objects == before  # accepted, not stored in the store


async def test_win32_properties_on_a_collection(client: TestClient) -> None:
    status, body = await proppatch(client, "/dir", WINDOWS_BODY)
    assert status == 207
    assert set(multistatus(body)["/dir/"].by_status) == {200}


async def test_a_failing_property_fails_the_rest_and_nothing_is_stored(
    client: TestClient
) -> None:
    body = update(
        '<Z:Win32FileAttributes xmlns:Z="urn:schemas-microsoft-com:">00000020'
        "</Z:Win32FileAttributes>",
        '<x:color xmlns:x="http://example.com/ns">red</x:color>',
        '<D:getetag>"x"</D:getetag>',
        remove=('<a:finder xmlns:a="http://www.apple.com/webdav_fs/props/"/>',),
    )
    status, out = await proppatch(client, "/doc.txt", body)
    assert status == 207
    answer = multistatus(out)["/doc.txt"]
    assert set(answer.by_status[403]) == {D + "getetag"}
    assert "computed by the server" in answer.descriptions[403]
    assert set(answer.by_status[424]) == {
        MS + "Win32FileAttributes", COLOR, "{http://www.apple.com/webdav_fs/props/}finder"
    }
    assert 200 not in answer.by_status
    assert await props_of(client, "/doc.txt", COLOR) == {}


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


async def test_a_read_only_share_stores_no_dead_property(
    aiohttp_client: AiohttpClient, store: MemoryStore
) -> None:
    app = app_for(store, policy=Policy(read_only=True))
    client = await aiohttp_client(app)
    resp = await client.request("PROPPATCH", "/doc.txt", data=update(color("red")))
    assert resp.status == 403 and "--read-only" in await resp.text()
    share = gateway_of(app).shares[0]
    assert await gateway_of(app).state.props_get(share.state_scope, "doc.txt") == {}


# ---- dead properties: stored, returned, following the resource ---------------------------


async def test_dead_properties_are_stored_and_returned(client: TestClient) -> None:
    value = (f'<x:size xmlns:x="{NS}" x:unit="cm"><x:w>2</x:w>'
             '<y xmlns="urn:y">é &amp; 𝄞</y></x:size>')
    status, out = await proppatch(client, "/doc.txt", update(color("red"), value))
    assert status == 207
    assert set(multistatus(out)["/doc.txt"].by_status) == {200}
    found = await props_of(client, "/doc.txt", COLOR, SIZE, D + "getetag")
    assert found[COLOR].text == "red"
    assert found[SIZE].get(f"{{{NS}}}unit") == "cm"
    assert found[SIZE].findtext(f"{{{NS}}}w") == "2"
    assert found[SIZE].findtext("{urn:y}y") == "é & 𝄞"
    assert D + "getetag" in found
    # allprop and propname name them too
    resp = await client.request("PROPFIND", "/doc.txt", headers={"Depth": "0"})
    assert multistatus(await resp.read())["/doc.txt"].ok()[COLOR].text == "red"
    resp = await client.request("PROPFIND", "/doc.txt", headers={"Depth": "0"},
                                data='<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>')
    named = multistatus(await resp.read())["/doc.txt"].ok()
    assert COLOR in named and SIZE in named and named[COLOR].text is None


async def test_a_property_in_no_namespace(client: TestClient) -> None:
    body = ('<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><nons xmlns="">v</nons>'
            "</D:prop></D:set></D:propertyupdate>")
    assert (await proppatch(client, "/doc.txt", body))[0] == 207
    resp = await client.request("PROPFIND", "/doc.txt", headers={"Depth": "0"})
    assert multistatus(await resp.read())["/doc.txt"].ok()["nons"].text == "v"


async def test_remove_and_replace_in_document_order(client: TestClient) -> None:
    await proppatch(client, "/doc.txt", update(color("red"), f'<x:size xmlns:x="{NS}">1</x:size>'))
    # set then remove in one request: removed; removing what is not there is fine
    body = update(color("blue"), remove=(f'<x:color xmlns:x="{NS}"/>',
                                         '<x:gone xmlns:x="urn:none"/>'))
    status, out = await proppatch(client, "/doc.txt", body)
    assert status == 207 and set(multistatus(out)["/doc.txt"].by_status) == {200}
    found = await props_of(client, "/doc.txt", COLOR, SIZE)
    assert COLOR not in found and found[SIZE].text == "1"
    await proppatch(client, "/doc.txt", update(f'<x:size xmlns:x="{NS}">2</x:size>'))
    assert (await props_of(client, "/doc.txt", SIZE))[SIZE].text == "2"


async def test_collections_keep_properties_and_depth_1_shows_each_member_s(
    client: TestClient
) -> None:
    assert (await proppatch(client, "/dir", update(color("dir"))))[0] == 207
    assert (await proppatch(client, "/dir/x", update(color("x"))))[0] == 207
    assert (await proppatch(client, "/", update(color("root"))))[0] == 207
    resp = await client.request("PROPFIND", "/", headers={"Depth": "1"},
                                data=propfind_body(COLOR))
    answers = multistatus(await resp.read())
    assert answers["/"].ok()[COLOR].text == "root"
    assert answers["/dir/"].ok()[COLOR].text == "dir"
    assert answers["/doc.txt"].status_of(COLOR) == 404
    resp = await client.request("PROPFIND", "/dir/", headers={"Depth": "1"})
    answers = multistatus(await resp.read())
    assert answers["/dir/x"].ok()[COLOR].text == "x"


async def test_past_the_cap_is_a_507_naming_it_and_nothing_is_stored(client: TestClient
                                                                      ) -> None:
    await proppatch(client, "/doc.txt", update(color("red")))
    big = f'<x:big xmlns:x="{NS}">{"b" * PROPS_MAX_BYTES}</x:big>'
    resp = await client.request("PROPPATCH", "/doc.txt",
                                data=update(big, f'<x:size xmlns:x="{NS}">1</x:size>'))
    assert resp.status == 507
    assert f"the most kept per resource is {PROPS_MAX_BYTES}" in await resp.text()
    found = await props_of(client, "/doc.txt", COLOR, SIZE, f"{{{NS}}}big")
    assert set(found) == {COLOR}


@pytest.fixture
async def full(aiohttp_client: AiohttpClient, store: MemoryStore) -> TestClient:
    return await aiohttp_client(app_for(store, policy=ALL_FLAGS))


async def test_copy_copies_move_moves_delete_deletes(full: TestClient, store: MemoryStore
                                                     ) -> None:
    await proppatch(full, "/doc.txt", update(color("doc")))
    assert (await full.request("COPY", "/doc.txt",
                               headers={"Destination": "/copy.txt"})).status == 201
    assert (await props_of(full, "/copy.txt", COLOR))[COLOR].text == "doc"
    assert (await props_of(full, "/doc.txt", COLOR))[COLOR].text == "doc"
    assert (await full.request("MOVE", "/doc.txt",
                               headers={"Destination": "/moved.txt"})).status == 201
    assert (await props_of(full, "/moved.txt", COLOR))[COLOR].text == "doc"
    # COPY onto an existing target replaces its properties with the source's
    await proppatch(full, "/dir/x", update(color("x"), f'<x:size xmlns:x="{NS}">1</x:size>'))
    assert (await full.request("COPY", "/moved.txt",
                               headers={"Destination": "/dir/x"})).status == 204
    found = await props_of(full, "/dir/x", COLOR, SIZE)
    assert found[COLOR].text == "doc" and SIZE not in found
    assert (await full.delete("/moved.txt")).status == 204
    store.put_sync("moved.txt", b"again")  # a new object at the name: none of the old's
    assert await props_of(full, "/moved.txt", COLOR) == {}


async def test_collections_carry_their_members_properties(full: TestClient,
                                                          store: MemoryStore) -> None:
    await proppatch(full, "/dir/", update(color("dir")))
    await proppatch(full, "/dir/x", update(color("x")))
    assert (await full.request("COPY", "/dir/",
                               headers={"Destination": "/c/"})).status == 201
    assert (await props_of(full, "/c/", COLOR))[COLOR].text == "dir"
    assert (await props_of(full, "/c/x", COLOR))[COLOR].text == "x"
    # Depth 0: the collection's own, not its members'
    store.put_sync("e/x", b"x")
    assert (await full.request("COPY", "/dir/", headers={"Destination": "/s/",
                                                         "Depth": "0"})).status == 201
    assert (await props_of(full, "/s/", COLOR))[COLOR].text == "dir"
    assert (await full.request("MOVE", "/dir/",
                               headers={"Destination": "/m/"})).status == 201
    assert (await props_of(full, "/m/x", COLOR))[COLOR].text == "x"
    assert (await full.delete("/m/")).status == 204
    store.put_sync("m/x", b"new")
    assert await props_of(full, "/m/", COLOR) == {}
    assert await props_of(full, "/m/x", COLOR) == {}
    # a collection replacing one drops the old one's members' properties
    await proppatch(full, "/e/x", update(color("old")))
    assert (await full.request("COPY", "/c/", headers={"Destination": "/e/"})).status == 204
    assert (await props_of(full, "/e/x", COLOR))[COLOR].text == "x"


async def test_a_state_store_down_is_a_503_for_proppatch_not_for_propfind(
    aiohttp_client: AiohttpClient, store: MemoryStore
) -> None:
    gateway = gateway_for(store)
    gateway.state = state = FlakyState()
    client = await aiohttp_client(make_app(gateway))
    await proppatch(client, "/doc.txt", update(color("red")))
    state.down = True
    resp = await client.request("PROPPATCH", "/doc.txt", data=update(color("blue")))
    assert resp.status == 503 and "state store" in await resp.text()
    resp = await client.request("PROPFIND", "/", headers={"Depth": "1"})
    assert resp.status == 207
    assert set(multistatus(await resp.read())) == {"/", "/doc.txt", "/dir/"}
    state.down = False
    assert (await props_of(client, "/doc.txt", COLOR))[COLOR].text == "red"


async def test_xml_lang_is_kept_and_the_answer_stays_well_formed(client: TestClient) -> None:
    """RFC 4918 (4.3) asks that xml:lang be kept; rebinding its namespace to another
    prefix would make every PROPFIND of the folder malformed."""
    body = update(f'<x:color xmlns:x="{NS}" xml:lang="fr">rouge</x:color>')
    assert (await proppatch(client, "/doc.txt", body))[0] == 207
    found = await props_of(client, "/doc.txt", COLOR)
    assert found[COLOR].get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
    resp = await client.request("PROPFIND", "/", headers={"Depth": "1"})
    assert multistatus(await resp.read())["/doc.txt"].ok()[COLOR].text == "rouge"

"""PROPFIND: depths, the three request kinds, hrefs, live properties, streaming."""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from lxml import etree
from pytest_aiohttp import AiohttpClient

from gateway.errors import Unavailable
from gateway.fs.listing import Entry
from gateway.webdav.props import Resource, render
from tests.apps import app_for
from tests.memorystore import MemoryStore
from tests.webdav.davxml import D, lock_body, multistatus, propfind_body

EXECUTABLE = "{http://apache.org/dav/props/}executable"
QUOTA = (D + "quota-available-bytes", D + "quota-used-bytes")


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.put_sync("file.txt", b"hello world", "text/plain")
    store.put_sync("dir/a.bin", b"abc")
    store.put_sync("dir/sub/b", b"b")
    store.put_sync("marked/", b"")
    return store


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, store: MemoryStore) -> TestClient:
    return await aiohttp_client(app_for(store))


async def propfind(client: TestClient, path: str, depth: str | None = "0",
                   body: str | bytes = b"") -> tuple[int, bytes, dict[str, str]]:
    headers = {"Depth": depth} if depth is not None else {}
    resp = await client.request("PROPFIND", path, data=body, headers=headers)
    return resp.status, await resp.read(), dict(resp.headers)


async def test_allprop_on_a_file(client: TestClient) -> None:
    status, body, headers = await propfind(client, "/file.txt")
    assert status == 207
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    answers = multistatus(body)
    assert list(answers) == ["/file.txt"]
    props = answers["/file.txt"].ok()
    assert len(props[D + "resourcetype"]) == 0
    assert props[D + "getcontentlength"].text == "11"
    assert props[D + "getcontenttype"].text == "text/plain"
    assert props[D + "displayname"].text == "file.txt"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", props[D + "creationdate"].text or "")
    modified = props[D + "getlastmodified"].text or ""
    assert modified.endswith(" GMT")
    assert isinstance(parsedate_to_datetime(modified), datetime)
    scopes = {e[0][0].tag for e in props[D + "supportedlock"]}
    assert scopes == {D + "exclusive", D + "shared"}
    assert len(props[D + "lockdiscovery"]) == 0
    assert set(answers["/file.txt"].by_status) == {200}  # allprop reports no 404s
    for name in QUOTA:
        assert name not in props


async def test_getetag_and_getlastmodified_equal_the_get_headers(client: TestClient) -> None:
    _, body, _ = await propfind(client, "/file.txt")
    props = multistatus(body)["/file.txt"].ok()
    get = await client.get("/file.txt")
    assert props[D + "getetag"].text == get.headers["ETag"]
    assert props[D + "getlastmodified"].text == get.headers["Last-Modified"]


async def test_depth_0_on_an_implicit_directory(client: TestClient) -> None:
    status, body, _ = await propfind(client, "/dir")
    assert status == 207
    answer = multistatus(body)["/dir/"]  # collections end in "/", whatever was asked
    props = answer.ok()
    assert props[D + "resourcetype"][0].tag == D + "collection"
    # an implicit directory has no length, type, etag or date
    for name in ("getcontentlength", "getcontenttype", "getetag", "getlastmodified"):
        assert D + name not in props


async def test_depth_1_lists_the_collection_and_its_children(client: TestClient) -> None:
    status, body, _ = await propfind(client, "/", depth="1")
    assert status == 207
    answers = multistatus(body)
    assert list(answers) == ["/", "/dir/", "/file.txt", "/marked/"]
    assert answers["/dir/"].ok()[D + "resourcetype"][0].tag == D + "collection"
    assert answers["/file.txt"].ok()[D + "getcontentlength"].text == "11"


async def test_depth_1_on_a_file_is_the_file_alone(client: TestClient) -> None:
    _, body, _ = await propfind(client, "/file.txt", depth="1")
    assert list(multistatus(body)) == ["/file.txt"]


@pytest.mark.parametrize("depth", ["infinity", "Infinity", None])
async def test_infinite_depth_on_a_collection_is_refused(client: TestClient, depth: str | None
                                                         ) -> None:
    status, body, _headers = await propfind(client, "/dir/", depth=depth)
    assert status == 403
    root = etree.fromstring(body)
    assert root.tag == D + "error"
    assert [child.tag for child in root] == [D + "propfind-finite-depth"]


@pytest.mark.parametrize("depth", ["infinity", None])
async def test_infinite_depth_on_a_file_is_depth_0(client: TestClient, depth: str | None) -> None:
    status, body, _ = await propfind(client, "/file.txt", depth=depth)
    assert status == 207
    assert list(multistatus(body)) == ["/file.txt"]


async def test_a_bad_depth_is_a_400(client: TestClient) -> None:
    status, _, _ = await propfind(client, "/", depth="2")
    assert status == 400


async def test_named_properties_with_unknown_ones_in_a_404_propstat(client: TestClient) -> None:
    body = propfind_body(D + "getetag", D + "getcontentlength", "{urn:x}color", *QUOTA)
    status, out, _ = await propfind(client, "/file.txt", body=body)
    assert status == 207
    answer = multistatus(out)["/file.txt"]
    assert set(answer.ok()) == {D + "getetag", D + "getcontentlength"}
    assert set(answer.by_status[404]) == {"{urn:x}color", *QUOTA}
    assert all(len(e) == 0 and not e.text for e in answer.by_status[404].values())


async def test_only_what_was_asked_for_is_sent(client: TestClient) -> None:
    _, out, _ = await propfind(client, "/", depth="1", body=propfind_body(D + "resourcetype"))
    for answer in multistatus(out).values():
        assert set(answer.ok()) == {D + "resourcetype"}
        assert set(answer.by_status) == {200}


async def test_davfs2_asks_for_executable(client: TestClient) -> None:
    body = propfind_body(D + "resourcetype", D + "getcontentlength", D + "getetag",
                         D + "getlastmodified", EXECUTABLE)
    _, out, _ = await propfind(client, "/", depth="1", body=body)
    answers = multistatus(out)
    assert answers["/file.txt"].ok()[EXECUTABLE].text == "F"
    assert answers["/dir/"].status_of(EXECUTABLE) == 404


async def test_propname_lists_names_without_values(client: TestClient) -> None:
    body = '<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
    _, out, _ = await propfind(client, "/file.txt", body=body)
    props = multistatus(out)["/file.txt"].ok()
    assert {D + "getetag", D + "getcontentlength", D + "resourcetype", EXECUTABLE} <= set(props)
    assert all(len(e) == 0 and not e.text for e in props.values())


async def test_allprop_with_include(client: TestClient) -> None:
    body = ('<D:propfind xmlns:D="DAV:"><D:allprop/><D:include>'
            '<x:executable xmlns:x="http://apache.org/dav/props/"/></D:include></D:propfind>')
    _, out, _ = await propfind(client, "/file.txt", body=body)
    props = multistatus(out)["/file.txt"].ok()
    assert props[EXECUTABLE].text == "F"
    assert D + "getetag" in props


async def test_an_explicit_allprop_body_equals_an_empty_body(client: TestClient) -> None:
    _, empty, _ = await propfind(client, "/file.txt")
    allprop = '<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    _, explicit, _ = await propfind(client, "/file.txt", body=allprop)
    assert set(multistatus(empty)["/file.txt"].ok()) == set(
        multistatus(explicit)["/file.txt"].ok())


async def test_a_missing_resource_is_a_plain_404(client: TestClient) -> None:
    status, _body, headers = await propfind(client, "/nope.txt")
    assert status == 404
    assert headers["Content-Type"].startswith("text/plain")
    status, _, _ = await propfind(client, "/file.txt/")  # a file is not a collection
    assert status == 404


@pytest.mark.parametrize("body", [
    "<D:propfind xmlns:D='DAV:'><D:prop>",
    "<D:lockinfo xmlns:D='DAV:'/>",
    "<D:propfind xmlns:D='DAV:'><D:prop/><D:allprop/></D:propfind>",
])
async def test_a_malformed_body_is_a_400(client: TestClient, body: str) -> None:
    status, _, _ = await propfind(client, "/file.txt", body=body)
    assert status == 400


async def test_client_noise_probes_are_404_without_a_store_call(
    client: TestClient, store: MemoryStore
) -> None:
    before = sum(store.calls.values())
    for name in ("._file.txt", ".DS_Store", "desktop.ini", "dir/Thumbs.db"):
        status, _, _ = await propfind(client, "/" + name)
        assert status == 404
    assert sum(store.calls.values()) == before


async def test_hrefs_of_odd_names_are_percent_encoded_uppercase(
    aiohttp_client: AiohttpClient
) -> None:
    names = ["a b.txt", "res-€", "frag#ment", "q?x", "100%", "plus+&amp", "u\u0308ber", "é"]
    store = MemoryStore()
    for name in names:
        store.put_sync("odd/" + name, b"x")
    client = await aiohttp_client(app_for(store))
    _, body, _ = await propfind(client, "/odd/", depth="1")
    hrefs = set(multistatus(body))
    expected = {"/odd/"} | {"/odd/" + quote(name, safe="") for name in names}
    assert hrefs == expected
    assert "/odd/res-%E2%82%AC" in hrefs
    assert "/odd/u%CC%88ber" in hrefs  # NFD stays NFD
    # every href is usable as a request path
    for href in expected - {"/odd/"}:
        status, _, _ = await propfind(client, href)
        assert status == 207


async def test_hrefs_carry_the_mount_of_the_share(aiohttp_client: AiohttpClient) -> None:
    store = MemoryStore()
    store.put_sync("pre/x y", b"1")
    client = await aiohttp_client(app_for(store, mount="/bucket/", prefix="pre/"))
    _, body, _ = await propfind(client, "/bucket/", depth="1")
    assert list(multistatus(body)) == ["/bucket/", "/bucket/x%20y"]


async def test_responses_are_compact(client: TestClient) -> None:
    _, body, _ = await propfind(client, "/", depth="1")
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?><D:multistatus')
    assert b">\n" not in body and b">  " not in body


async def test_a_large_folder_is_streamed_completely(aiohttp_client: AiohttpClient) -> None:
    store = MemoryStore()
    for i in range(2500):  # three store pages
        store.put_sync(f"big/f{i:05d}", b"x")
    client = await aiohttp_client(app_for(store))
    resp = await client.request("PROPFIND", "/big/", headers={"Depth": "1"},
                                data=propfind_body(D + "getcontentlength"))
    assert resp.status == 207
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    answers = multistatus(await resp.read())
    assert len(answers) == 2501
    assert answers["/big/f02499"].ok()[D + "getcontentlength"].text == "1"
    assert store.calls["list"] >= 3


async def test_a_store_failing_before_the_listing_gets_a_clean_status(
    client: TestClient, store: MemoryStore
) -> None:
    store.fail("list", Unavailable("store down"), times=5)
    status, _, _ = await propfind(client, "/", depth="1")
    assert status == 503


async def test_lockdiscovery_shows_the_locks_covering_a_resource(client: TestClient) -> None:
    resp = await client.request("LOCK", "/dir/", data=lock_body(), headers={"Depth": "infinity"})
    assert resp.status == 200
    token = resp.headers["Lock-Token"].strip("<>")
    _, body, _ = await propfind(client, "/dir/", depth="1",
                                body=propfind_body(D + "lockdiscovery"))
    answers = multistatus(body)
    for href in ("/dir/", "/dir/a.bin", "/dir/sub/"):
        locks = answers[href].ok()[D + "lockdiscovery"]
        assert [lk.findtext(f"{D}locktoken/{D}href") for lk in locks] == [token]
        assert locks[0].findtext(f"{D}lockroot/{D}href") == "/dir/"
    _, body, _ = await propfind(client, "/file.txt", body=propfind_body(D + "lockdiscovery"))
    assert len(multistatus(body)["/file.txt"].ok()[D + "lockdiscovery"]) == 0


async def test_a_folder_costs_one_listing_request_per_page_and_nothing_more(
    client: TestClient, store: MemoryStore
) -> None:
    """The first page of the members' listing says whether the folder exists: no request
    of its own for that. Without the trailing slash the HEAD for a file of that name runs
    alongside it."""
    before = store.calls.copy()
    status, body, _ = await propfind(client, "/dir/", depth="1")
    assert (status, list(multistatus(body))) == (207, ["/dir/", "/dir/a.bin", "/dir/sub/"])
    assert store.calls["list"] - before["list"] == 1
    assert store.calls["head"] == before["head"]
    status, body, _ = await propfind(client, "/marked", depth="1")  # only its marker
    assert (status, list(multistatus(body))) == (207, ["/marked/"])
    assert store.calls["list"] - before["list"] == 2
    assert store.calls["head"] - before["head"] == 1


@pytest.mark.parametrize("path", ["/nope/", "/nope", "/file.txt/"])
async def test_depth_1_on_nothing_is_a_404(client: TestClient, path: str) -> None:
    status, _, _ = await propfind(client, path, depth="1")
    assert status == 404


async def test_depth_1_on_a_file_named_without_slash_is_the_file(
    client: TestClient, store: MemoryStore
) -> None:
    store.put_sync("both", b"file")
    store.put_sync("both/inner", b"under it")
    _, body, _ = await propfind(client, "/both", depth="1")
    assert list(multistatus(body)) == ["/both"]  # as a Depth 0 answer says
    _, body, _ = await propfind(client, "/both", depth="0")
    assert list(multistatus(body)) == ["/both"]


def test_a_name_asked_twice_is_answered_once_in_the_order_asked() -> None:
    entry = Entry("a&b<c>.txt", False, 3, None, '"e&t"')
    got = render(Resource("/x/a%26b", entry), [D + "getetag", "{urn:x}n", D + "displayname",
                                               D + "getetag", "{urn:x}n"])
    assert got == (
        "<D:response><D:href>/x/a%26b</D:href><D:propstat><D:prop>"
        '<D:getetag>"e&amp;t"</D:getetag><D:displayname>a&amp;b&lt;c&gt;.txt</D:displayname>'
        "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat><D:propstat><D:prop>"
        '<ns0:n xmlns:ns0="urn:x"/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status>'
        "</D:propstat></D:response>"
    )

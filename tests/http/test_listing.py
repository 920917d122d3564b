"""Directory listings: an HTML page for people, JSON for programs, both streamed."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.errors import Unavailable
from gateway.http.listing import human_size, prefers_json
from gateway.settings import Source
from gateway.storage.base import ListPage
from gateway.storage.local import LocalStore
from tests.apps import app_for
from tests.http.stores import FailsAfterFirstPage
from tests.memorystore import MemoryStore

Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]
MakeClient = Callable[..., Awaitable[Client]]

XSS_FILE = "<img src=x onerror=alert(1)>.txt"
XSS_KEY = "<script>alert(1)</script>"  # the "/" makes it a directory "<script>alert(1)<"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class GatedPages(MemoryStore):
    """Holds every listing page after the first until ``gate`` is opened."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def list_page(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        if token is not None:
            await self.gate.wait()
        return await super().list_page(prefix, delimiter, token, max_keys)


@dataclass
class Row:
    name: str
    kind: str
    href: str
    text: str
    cells: list[str] = field(default_factory=list)
    time: dict[str, str] = field(default_factory=dict)


class Page(HTMLParser):
    """The parts of the listing page a person reads: crumbs, parent link, rows, footer."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.crumbs: list[tuple[str, str | None]] = []  # (text, href or None for "here")
        self.parent: str | None = None
        self.rows: list[Row] = []
        self.footer = ""
        self.title = ""
        self.script_nonces: list[str] = []
        self._stack: list[tuple[str, dict[str, str]]] = []
        self._in_rows = False
        self._cell: list[str] | None = None
        self.feed(html)
        self.close()

    def _inside(self, tag: str, **attrs: str) -> bool:
        return any(
            t == tag and all(a.get(k) == v for k, v in attrs.items()) for t, a in self._stack
        )

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        if tag not in ("meta", "input", "br"):
            self._stack.append((tag, attrs))
        if tag == "script":
            self.script_nonces.append(attrs.get("nonce", ""))
        if tag == "tbody" and attrs.get("id") == "rows":
            self._in_rows = True
        if tag == "tr" and self._in_rows:
            self.rows.append(Row(attrs["data-name"], attrs["class"], "", ""))
        if tag == "td" and self._in_rows:
            self._cell = []
        if tag == "a" and self._in_rows and self.rows and not self.rows[-1].href:
            self.rows[-1].href = attrs["href"]
        if tag == "time" and self._in_rows:
            self.rows[-1].time = attrs
        if tag == "a" and attrs.get("class") == "crumb":
            self.crumbs.append(("", attrs["href"]))
        if tag == "span" and "here" in attrs.get("class", ""):
            self.crumbs.append(("", None))
        if tag == "a" and attrs.get("rel") == "up":
            self.parent = attrs["href"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_rows = False
        if tag == "td" and self._cell is not None:
            self.rows[-1].cells.append("".join(self._cell).strip())
            self._cell = None
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_rows and self._inside("a") and self.rows:
            self.rows[-1].text += data
        crumb = self._inside("a", **{"class": "crumb"}) or self._inside(
            "span", **{"class": "crumb here"}
        )
        if self.crumbs and crumb:
            text, href = self.crumbs[-1]
            self.crumbs[-1] = (text + data, href)
        if self._inside("footer"):
            self.footer += data
        if self._inside("title"):
            self.title += data


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    for key, data in [
        ("readme.txt", b"hello"),
        ("big.iso", b"\0" * 1536),
        ("sp ace#?.bin", b"1"),
        (XSS_FILE, b"x"),
        (XSS_KEY, b"y"),
        ("a b/c/deep.txt", b"deep"),
        ("a b/c/d/", b""),
        ("a b/sibling", b"s"),
        ("sub/inner.txt", b"i"),
        ("empty/", b""),
        (".DS_Store", b"noise"),
        ("._readme.txt", b"noise"),
    ]:
        store.put_sync(key, data)
    store.calls.clear()
    return store


@pytest.fixture
async def client(aiohttp_client: MakeClient, store: MemoryStore) -> Client:
    return await aiohttp_client(app_for(store))


async def page(client: Client, path: str) -> Page:
    resp = await client.get(path, headers={"Accept": BROWSER_ACCEPT})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    return Page(await resp.text())


# ---- HTML -------------------------------------------------------------------------------------


async def test_a_folder_is_an_html_page_listing_files_and_directories(client: Client) -> None:
    listing = await page(client, "/")
    kinds = {r.name: r.kind for r in listing.rows}
    assert kinds == {
        "readme.txt": "file",
        "big.iso": "file",
        "sp ace#?.bin": "file",
        XSS_FILE: "file",
        "<script>alert(1)<": "dir",
        "a b": "dir",
        "sub": "dir",
        "empty": "dir",
    }
    assert listing.title == "Index of /"


async def test_names_are_escaped_never_markup(client: Client) -> None:
    resp = await client.get("/")
    html = await resp.text()
    assert "<img src=x" not in html
    assert "<script>alert" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in html
    rows = {r.name: r for r in Page(html).rows}
    assert rows[XSS_FILE].text == XSS_FILE  # shown as text, exactly
    assert rows["<script>alert(1)<"].text == "<script>alert(1)</"


async def test_row_links_are_percent_encoded_and_directories_end_in_a_slash(
    client: Client,
) -> None:
    hrefs = {r.name: r.href for r in (await page(client, "/")).rows}
    assert hrefs["sp ace#?.bin"] == "/sp%20ace%23%3F.bin"
    assert hrefs[XSS_FILE] == "/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.txt"
    assert hrefs["<script>alert(1)<"] == "/%3Cscript%3Ealert%281%29%3C/"
    assert hrefs["a b"] == "/a%20b/"
    assert hrefs["readme.txt"] == "/readme.txt"


async def test_every_row_link_leads_to_what_it_names(client: Client) -> None:
    for row in (await page(client, "/")).rows:
        resp = await client.get(row.href, headers={"Accept": "application/json"})
        assert resp.status == 200, row.href
        if row.kind == "dir":
            assert (await resp.json())["path"] == "/" + row.name + "/"


async def test_breadcrumbs_link_every_ancestor(client: Client) -> None:
    listing = await page(client, "/a%20b/c/")
    assert [href for _, href in listing.crumbs] == ["/", "/a%20b/", None]
    assert [text for text, _ in listing.crumbs][1:] == ["a b", "c"]
    assert listing.title == "Index of /a b/c/"
    assert listing.parent == "/a%20b/"
    assert {(r.name, r.kind, r.href) for r in listing.rows} == {
        ("deep.txt", "file", "/a%20b/c/deep.txt"),
        ("d", "dir", "/a%20b/c/d/"),
    }


async def test_the_root_has_no_parent_row(client: Client) -> None:
    assert (await page(client, "/")).parent is None
    assert (await page(client, "/sub/")).parent == "/"


async def test_sizes_are_in_binary_units_and_dates_carry_the_full_value(
    client: Client, store: MemoryStore
) -> None:
    rows = {r.name: r for r in (await page(client, "/")).rows}
    assert rows["big.iso"].cells[1] == "1.5 KiB"
    assert rows["readme.txt"].cells[1] == "5 B"
    assert rows["sub"].cells[1] == "—"
    modified = store.objects["readme.txt"].info.last_modified
    assert rows["readme.txt"].time["datetime"] == modified.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rows["readme.txt"].time["title"] == modified.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert rows["readme.txt"].cells[2] == modified.strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
     (1048575, "1.0 MiB"), (5 * 2**30, "5.0 GiB"), (3 * 2**40, "3.0 TiB")],
)
def test_human_sizes(size: int, text: str) -> None:
    assert human_size(size) == text


async def test_the_page_ends_with_a_count_of_its_entries(client: Client) -> None:
    footer = " ".join((await page(client, "/")).footer.split())
    assert footer.startswith("8 entries 4 folders, 4 files")


async def test_an_empty_folder_says_so(client: Client) -> None:
    resp = await client.get("/empty/")
    html = await resp.text()
    assert Page(html).rows == []
    assert "This folder is empty." in html
    assert "0 entries" in html


async def test_client_noise_is_not_listed(client: Client) -> None:
    names = {r.name for r in (await page(client, "/")).rows}
    assert ".DS_Store" not in names
    assert "._readme.txt" not in names


async def test_the_page_is_self_contained_and_only_its_own_script_runs(client: Client) -> None:
    resp = await client.get("/")
    html = await resp.text()
    policy = resp.headers["Content-Security-Policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce is not None
    assert Page(html).script_nonces == [nonce.group(1)]
    assert "default-src 'none'" in policy
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no external assets"
    assert '<meta name="viewport"' in html
    assert "prefers-color-scheme: dark" in html


async def test_listing_responses_vary_on_accept_and_are_not_cached(client: Client) -> None:
    for accept in (BROWSER_ACCEPT, "application/json"):
        resp = await client.get("/", headers={"Accept": accept})
        assert resp.headers["Vary"] == "Accept"
        assert resp.headers["Cache-Control"] == "no-cache"


async def test_head_answers_the_headers_without_listing(
    client: Client, store: MemoryStore
) -> None:
    get = await client.get("/sub/")
    store.calls.clear()
    head = await client.head("/sub/")
    assert head.status == 200
    assert await head.read() == b""
    for name in ("Content-Type", "Vary", "Cache-Control"):
        assert head.headers[name] == get.headers[name]
    assert store.calls["list"] <= 1  # only "does it exist"


async def test_a_missing_folder_is_a_plain_404(client: Client) -> None:
    for path in ("/nope/", "/sub/nope/", "/readme.txt/"):
        resp = await client.get(path)
        assert resp.status == 404
        assert resp.content_type == "text/plain"
        assert "does not exist" in await resp.text()


# ---- JSON -----------------------------------------------------------------------------------


async def test_json_lists_entries_with_their_metadata(client: Client, store: MemoryStore) -> None:
    resp = await client.get("/a%20b/", headers={"Accept": "application/json"})
    assert resp.status == 200
    assert resp.content_type == "application/json"
    body = await resp.json()
    info = store.objects["a b/sibling"].info
    assert body == {
        "path": "/a b/",
        "entries": [
            {
                "name": "c",
                "type": "directory",
                "size": 0,
                "modified": None,
                "etag": None,
                "content_type": None,
                "href": "/a%20b/c/",
            },
            {
                "name": "sibling",
                "type": "file",
                "size": 1,
                "modified": info.last_modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "etag": info.etag,
                "content_type": "application/octet-stream",
                "href": "/a%20b/sibling",
            },
        ],
    }


async def test_json_names_are_exact_and_hrefs_encoded(client: Client) -> None:
    body = await (await client.get("/?format=json")).json()
    by_name = {e["name"]: e for e in body["entries"]}
    assert by_name[XSS_FILE]["href"] == "/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.txt"
    assert by_name["readme.txt"]["content_type"] == "text/plain"
    assert by_name["empty"]["type"] == "directory"


async def test_format_json_wins_over_a_browsers_accept(client: Client) -> None:
    resp = await client.get("/?format=json", headers={"Accept": BROWSER_ACCEPT})
    assert resp.content_type == "application/json"
    html = await client.get("/?format=html", headers={"Accept": "application/json"})
    assert html.content_type == "text/html"


@pytest.mark.parametrize(
    ("accept", "json_wanted"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        (BROWSER_ACCEPT, False),
        ("application/json", True),
        ("application/json, text/plain, */*", True),
        ("application/*", True),
        ("text/html;q=0.4, application/json;q=0.5", True),
        ("text/html, application/json", False),
        ("application/json;q=0", False),
        ("application/json;q=0.9, */*;q=1", False),  # HTML gets q=1 through */*
        ("text/*, application/json;q=0.5", False),
        ("application/json;q=bogus, text/html;q=0.1", False),
    ],
)
def test_accept_negotiation(accept: str | None, json_wanted: bool) -> None:
    assert prefers_json(accept) is json_wanted


async def test_accept_json_gets_json(client: Client) -> None:
    resp = await client.get("/", headers={"Accept": "application/json;q=0.9, text/html;q=0.5"})
    assert resp.content_type == "application/json"


# ---- streaming and failures -------------------------------------------------------------------


def _many(count: int, page: int) -> MemoryStore:
    store = MemoryStore()
    store.list_page_size = page
    for i in range(count):
        store.put_sync(f"f{i:05}.dat", b"x" * (i % 7))
    for i in range(0, count, 500):
        store.put_sync(f"d{i:05}/x", b"")
    return store


async def test_5000_entries_over_many_pages_each_appear_once(aiohttp_client: MakeClient) -> None:
    store = _many(5000, page=37)
    client = await aiohttp_client(app_for(store))
    html = await (await client.get("/")).text()
    names = [r.name for r in Page(html).rows]
    assert len(names) == 5010
    assert len(set(names)) == 5010
    assert "5010 entries" in html
    body = await (await client.get("/", headers={"Accept": "application/json"})).json()
    assert [e["name"] for e in body["entries"]] == sorted(names)
    assert store.calls["list"] > 5010 // 37  # really paged


@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "application/json"])
async def test_the_first_rows_arrive_before_the_listing_is_complete(
    aiohttp_client: MakeClient, accept: str
) -> None:
    store = GatedPages()
    store.list_page_size = 300
    for i in range(600):
        store.put_sync(f"f{i:03}", b"")
    client = await aiohttp_client(app_for(store))
    resp = await client.get("/", headers={"Accept": accept})
    assert resp.status == 200
    # The second page is held back by the store, yet the head and a first batch of rows
    # are already here (the timeout only guards against a hang).
    seen = b""
    while b"f000" not in seen:
        chunk = await asyncio.wait_for(resp.content.readany(), 30)
        assert chunk, "the body ended before the first rows"
        seen += chunk
    assert not store.gate.is_set()
    store.gate.set()
    seen += await resp.read()
    text = seen.decode()
    if accept == "application/json":
        assert len(json.loads(text)["entries"]) == 600
    else:
        assert len(Page(text).rows) == 600


async def test_a_store_failure_mid_listing_aborts_the_connection(
    aiohttp_client: MakeClient,
) -> None:
    store = FailsAfterFirstPage()
    store.list_page_size = 10
    for i in range(50):
        store.put_sync(f"f{i:03}", b"")
    client = await aiohttp_client(app_for(store))
    for accept in (BROWSER_ACCEPT, "application/json"):
        resp = await client.get("/", headers={"Accept": accept})
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_a_store_failure_before_the_page_is_a_clean_503(
    client: Client, store: MemoryStore
) -> None:
    store.fail("list", Unavailable("the store is unavailable"))
    resp = await client.get("/sub/")
    assert resp.status == 503
    assert resp.content_type == "text/plain"


# ---- other shares ----------------------------------------------------------------------------


async def test_a_share_with_a_prefix_lists_only_under_it(aiohttp_client: MakeClient) -> None:
    store = MemoryStore()
    store.put_sync("pre/inside.txt", b"in")
    store.put_sync("pre/dir/x", b"x")
    store.put_sync("outside.txt", b"out")
    store.put_sync("prefix-sibling/y", b"y")
    client = await aiohttp_client(app_for(store, source=Source("s3", "bucket", "pre/")))
    body: dict[str, Any] = await (await client.get("/?format=json")).json()
    assert [(e["name"], e["href"]) for e in body["entries"]] == [
        ("dir", "/dir/"),
        ("inside.txt", "/inside.txt"),
    ]


async def test_a_local_folder_is_listed(aiohttp_client: MakeClient, tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "notes.md").write_text("# hi", "utf-8")
    store = LocalStore(tmp_path)
    await store.put("written.txt", b"through the store")  # creates the .bucketdav noise area
    client = await aiohttp_client(
        app_for(store, source=Source("file", str(tmp_path)))
    )
    rows = {(r.name, r.kind) for r in (await page(client, "/")).rows}
    assert rows == {("photos", "dir"), ("notes.md", "file"), ("written.txt", "file")}
    body = await (await client.get("/photos/?format=json")).json()
    assert body["entries"][0]["name"] == "cat.jpg"
    assert body["entries"][0]["content_type"] == "image/jpeg"
    assert json.dumps(body).isascii()

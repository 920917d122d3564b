"""Names with control characters: never created, and keys that have them never break a reply.

A PUT of ``bad%01name.txt`` used to succeed and then make every PROPFIND of its folder
ill-formed XML (rclone: "illegal character code U+0001"); a COPY to a name with CR/LF made
an object nobody could read or delete through the gateway.
"""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient
from lxml import etree
from pytest_aiohttp import AiohttpClient

from tests.apps import memory_app
from tests.memorystore import MemoryStore
from tests.webdav.davxml import multistatus


@pytest.fixture
async def dav(aiohttp_client: AiohttpClient) -> tuple[TestClient, MemoryStore]:
    app = memory_app()
    store = app.stores["/"]
    store.put_sync("dir/ok.txt", b"fine")
    store.put_sync("dir/bad\x01name.txt", b"planted by another tool")
    store.put_sync("dir/cr\r\nlf", b"planted too")
    store.put_sync("dir/del\x7f/inner", b"below a bad folder name")
    return await aiohttp_client(app.app), store


@pytest.mark.parametrize("target", ["/dir/new%01.txt", "/dir/new%0D%0A.txt", "/dir/new%7F"])
async def test_put_of_a_name_with_a_control_character_is_400(
    dav: tuple[TestClient, MemoryStore], target: str
) -> None:
    client, store = dav
    before = sorted(store.objects)
    resp = await client.put(target, data=b"x")
    assert resp.status == 400
    assert "control characters" in await resp.text()
    assert sorted(store.objects) == before


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
async def test_copy_or_move_to_a_name_with_cr_lf_is_400(
    dav: tuple[TestClient, MemoryStore], method: str
) -> None:
    client, store = dav
    before = sorted(store.objects)
    resp = await client.request(
        method, "/dir/ok.txt", headers={"Destination": "/dir/evil%0D%0Aname"}
    )
    assert resp.status == 400
    assert sorted(store.objects) == before


async def test_propfind_hides_such_keys_and_stays_well_formed(
    dav: tuple[TestClient, MemoryStore],
) -> None:
    client, _ = dav
    resp = await client.request("PROPFIND", "/dir/", headers={"Depth": "1"})
    assert resp.status == 207
    body = await resp.read()
    etree.fromstring(body)  # raises on an ill-formed reply
    assert sorted(multistatus(body)) == ["/dir/", "/dir/ok.txt"]


async def test_html_and_json_listings_hide_such_keys(dav: tuple[TestClient, MemoryStore]) -> None:
    client, _ = dav
    resp = await client.get("/dir/?format=json")
    assert resp.status == 200
    names = [entry["name"] for entry in json.loads(await resp.text())["entries"]]
    assert names == ["ok.txt"]
    html = await (await client.get("/dir/")).text()
    assert "ok.txt" in html
    assert "bad" not in html and "\x01" not in html and "\x7f" not in html

"""The app's one method table: every Allow header is derived from it, and it agrees with
what the handlers do (a method an Allow names is never answered 405 there)."""

from __future__ import annotations

import gc

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import METHODS
from gateway.auth.access import authenticate
from gateway.server import YOUNG_GC_THRESHOLD, young_collection_threshold
from gateway.settings import AuthSettings
from tests.apps import memory_app

EVERY = set(METHODS)
ON_COLLECTION = EVERY - {"PUT", "MKCOL"}
ON_FILE = EVERY - {"MKCOL"}


def allowed(resp: ClientResponse) -> set[str]:
    return {m.strip() for m in resp.headers.get("Allow", "").split(",") if m.strip()}


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> TestClient:
    app = memory_app()
    store = app.stores["/"]
    store.put_sync("file.txt", b"x")
    store.put_sync("dir/inner", b"y")
    return await aiohttp_client(app.app)


CLASS_2 = {"OPTIONS", "GET", "HEAD", "PROPFIND", "PROPPATCH", "MKCOL", "PUT", "DELETE", "COPY",
           "MOVE", "LOCK", "UNLOCK"}


async def test_the_table_holds_the_webdav_class_2_methods() -> None:
    assert set(METHODS) == CLASS_2


async def test_options_and_an_unknown_method_allow_the_whole_table(client: TestClient) -> None:
    assert allowed(await client.options("/dir/")) == EVERY
    resp = await client.request("PATCH", "/file.txt")
    assert resp.status == 405
    assert allowed(resp) == EVERY


@pytest.mark.parametrize("path", ["/", "/dir/", "/dir"])
async def test_put_on_a_collection_allows_what_a_collection_answers(
    client: TestClient, path: str
) -> None:
    resp = await client.put(path, data=b"z")
    assert resp.status == 405
    assert allowed(resp) == ON_COLLECTION


@pytest.mark.parametrize(("path", "expected"), [
    ("/file.txt", ON_FILE), ("/dir/", ON_COLLECTION), ("/", ON_COLLECTION)
])
async def test_mkcol_where_something_exists_allows_what_is_there(
    client: TestClient, path: str, expected: set[str]
) -> None:
    resp = await client.request("MKCOL", path)
    assert resp.status == 405
    assert "already exists" in await resp.text()
    assert allowed(resp) == expected


@pytest.mark.parametrize(("path", "allow"), [("/file.txt", ON_FILE), ("/dir/", ON_COLLECTION)])
async def test_each_method_is_405_exactly_where_allow_leaves_it_out(
    client: TestClient, path: str, allow: set[str]
) -> None:
    # DELETE and MOVE go last: they take the resource away (MOVE has no Destination and
    # is refused, DELETE succeeds); any other write leaves it where it is.
    for method in sorted(EVERY, key=lambda m: m in ("DELETE", "MOVE")):
        resp = await client.request(method, path, headers={"Depth": "0"})
        assert (resp.status == 405) == (method not in allow), (method, resp.status)


def test_the_young_generation_is_collected_less_often_and_the_older_ones_as_before() -> None:
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        young_collection_threshold()
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, 10, 10)
        assert YOUNG_GC_THRESHOLD > 700
    finally:
        gc.set_threshold(*saved)


def test_without_users_no_authentication_layer_runs() -> None:
    assert authenticate not in memory_app().app.middlewares
    anonymous = AuthSettings(anonymous="read-only")
    assert authenticate in memory_app(auth=anonymous).app.middlewares

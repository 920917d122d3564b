"""Keys already in a bucket that are not valid paths (control characters, backslashes,
empty components) are hidden from listings, and each one hidden is counted in
``bucketdav_invalid_keys_hidden_total``, so an operator learns the bucket holds them."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

from gateway.app import GATEWAY
from tests.apps import memory_app

METRIC = "bucketdav_invalid_keys_hidden_total"
PLANTED = [
    "dir/bad\x01name.txt",
    "dir/cr\r\nlf",
    "dir/del\x7f/inner",  # a folder with DEL in its name
    "dir/back\\slash",
    "dir/sub//empty-component",  # "sub" shows; its listing hides the empty name
]


def hidden(app: object) -> float:
    text = generate_latest(app[GATEWAY].metrics.registry).decode()  # type: ignore[index]
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == METRIC:
                return sample.value
    raise AssertionError(f"{METRIC} is not exported")


async def test_each_listing_that_hides_a_key_moves_the_metric(
    aiohttp_client: AiohttpClient,
) -> None:
    app = memory_app()
    store = app.stores["/"]
    store.put_sync("dir/ok.txt", b"fine")
    store.put_sync("dir/.DS_Store", b"client noise: hidden, but not invalid")
    for key in PLANTED:
        store.put_sync(key, b"planted behind the gateway")
    client = await aiohttp_client(app.app)
    assert hidden(app.app) == 0

    resp = await client.get("/dir/", headers={"Accept": "application/json"})
    names = [e["name"] for e in (await resp.json())["entries"]]
    assert sorted(names) == ["ok.txt", "sub"]
    assert hidden(app.app) == 4

    resp = await client.request("PROPFIND", "/dir/", headers={"Depth": "1"})
    assert resp.status == 207
    assert hidden(app.app) == 8

    resp = await client.get("/dir/sub/")
    assert resp.status == 200
    assert hidden(app.app) == 9

    resp = await client.get("/")  # nothing invalid at the root
    assert resp.status == 200
    assert hidden(app.app) == 9

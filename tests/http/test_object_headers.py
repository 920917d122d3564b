"""Served objects are inert in a browser: every object response, whatever its status or
form, says ``nosniff`` and carries a Content-Security-Policy that runs nothing; a share
opted in with ``trusted_html`` drops that policy; listings keep their own.

A writer could upload ``x.html`` holding a script that would run in the gateway's origin
when another user opened it, reading with that user's credentials.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.settings import Policy
from tests.apps import ALL_FLAGS, memory_app

Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]

PAGE = b"<html><script>document.title='ran'</script></html>"

REQUESTS = [
    pytest.param("GET", {}, 200, id="get"),
    pytest.param("HEAD", {}, 200, id="head"),
    pytest.param("GET", {"Range": "bytes=0-9"}, 206, id="range"),
    pytest.param("HEAD", {"Range": "bytes=0-9"}, 206, id="head-range"),
    pytest.param("GET", {"Range": "bytes=0-1,5-6"}, 206, id="multipart"),
    pytest.param("GET", {"If-None-Match": "*"}, 304, id="not-modified"),
    pytest.param("GET", {"Range": "bytes=9000-"}, 416, id="unsatisfiable"),
]


def assert_inert(headers: Mapping[str, str]) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    policy = headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert "sandbox" in directives
    assert not any(token.startswith("allow-scripts") for token in directives["sandbox"])
    assert directives["default-src"] == ["'none'"]
    assert "script-src" not in directives


async def _client(aiohttp_client: AiohttpClient, policy: Policy) -> Client:
    app = memory_app(policy=policy)
    app.stores["/"].put_sync("x.html", PAGE, "text/html")
    app.stores["/"].put_sync("dir/pic.png", b"\x89PNG\r\n\x1a\n", "image/png")
    return await aiohttp_client(app.app)


@pytest.mark.parametrize(("method", "headers", "status"), REQUESTS)
async def test_every_object_response_is_inert(
    aiohttp_client: AiohttpClient, method: str, headers: dict[str, str], status: int
) -> None:
    client = await _client(aiohttp_client, ALL_FLAGS)
    resp = await client.request(method, "/x.html", headers=headers)
    assert resp.status == status
    if status == 416:
        # A refusal in text/plain: nosniff is what matters there.
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        return
    assert_inert(resp.headers)


async def test_a_page_in_the_client_noise_area_is_inert(aiohttp_client: AiohttpClient) -> None:
    client = await _client(aiohttp_client, Policy())
    resp = await client.put("/._x.html", data=PAGE, headers={"Content-Type": "text/html"})
    assert resp.status in (201, 204)
    resp = await client.get("/._x.html")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    assert_inert(resp.headers)


async def test_a_trusted_html_share_drops_the_policy_only(aiohttp_client: AiohttpClient) -> None:
    client = await _client(aiohttp_client, Policy(trusted_html=True))
    for method, headers in (("GET", {}), ("HEAD", {}), ("GET", {"Range": "bytes=0-3"})):
        resp = await client.request(method, "/x.html", headers=headers)
        assert resp.status in (200, 206)
        assert "Content-Security-Policy" not in resp.headers
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("trusted", [False, True])
async def test_listings_keep_their_own_nonce_policy(
    aiohttp_client: AiohttpClient, trusted: bool
) -> None:
    client = await _client(aiohttp_client, Policy(trusted_html=trusted))
    resp = await client.get("/dir/", headers={"Accept": "text/html"})
    assert resp.status == 200
    policy = resp.headers["Content-Security-Policy"]
    assert re.search(r"script-src 'nonce-[^']+'", policy)
    assert "sandbox" not in policy
    assert resp.headers["X-Content-Type-Options"] == "nosniff"

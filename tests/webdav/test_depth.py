"""The Depth header, read one way for every method: what each method allows, a missing
header as infinity, any other value a 400 naming the method."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from tests.apps import memory_app
from tests.webdav.davxml import lock_body

# (method, path, the depths it accepts there)
ACCEPTS = [
    ("PROPFIND", "/dir/", ("0", "1")),  # infinity is understood, then refused with 403
    ("LOCK", "/dir/", ("0", "infinity")),
    ("COPY", "/dir/", ("0", "infinity")),
    ("MOVE", "/dir/", ("infinity",)),
]


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> TestClient:
    app = memory_app()
    app.stores["/"].put_sync("dir/a", b"a")
    return await aiohttp_client(app.app)


def _request(method: str, depth: str | None) -> tuple[dict[str, str], str]:
    headers = {"Depth": depth} if depth is not None else {}
    if method in ("COPY", "MOVE"):
        headers["Destination"] = "/elsewhere/"
    return headers, lock_body() if method == "LOCK" else ""


@pytest.mark.parametrize(("method", "path", "accepted"), ACCEPTS)
@pytest.mark.parametrize("depth", ["0", "1", "infinity", "Infinity", " 1 ", "2", "one", ""])
async def test_depth_is_what_the_method_allows_or_400(
    client: TestClient, method: str, path: str, accepted: tuple[str, ...], depth: str
) -> None:
    headers, body = _request(method, depth)
    resp = await client.request(method, path, headers=headers, data=body)
    if depth.strip().lower() in accepted:
        assert resp.status in (200, 201, 207), (method, depth, resp.status)
    elif depth.strip().lower() == "infinity":
        assert (method, resp.status) == ("PROPFIND", 403)
    else:
        assert resp.status == 400
        text = await resp.text()
        assert f"{method} Depth must be " in text and repr(depth.strip()) in text


@pytest.mark.parametrize(("method", "status"), [
    ("PROPFIND", 403), ("LOCK", 200), ("COPY", 201), ("MOVE", 201)
])
async def test_a_missing_depth_is_infinity(client: TestClient, method: str, status: int) -> None:
    headers, body = _request(method, None)
    resp = await client.request(method, "/dir/", headers=headers, data=body)
    assert resp.status == status
    if method == "LOCK":
        assert "<D:depth>infinity</D:depth>" in await resp.text()

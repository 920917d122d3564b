"""Names a local folder's file system cannot hold are a 400 naming the limit, never a 500.

A path component over 255 bytes (the usual NAME_MAX; bytes, not characters: 128 ``é`` are
256), or a path past PATH_MAX, made the OS answer ENAMETOOLONG, which escaped as
"internal error" on PUT, MKCOL, COPY/MOVE destinations, GET and PROPFIND. The gateway's
app runs over a real local folder here.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.settings import Source
from gateway.storage.local import LocalStore
from tests.apps import ALL_FLAGS, app_for

Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]

LONG_NAMES = {
    "ascii-256": "a" * 256,
    "utf8-256-bytes": "\u00e9" * 128,  # 128 characters, 256 bytes
}


def deep_folders(root: Path) -> str:
    """Folders under ``root`` whose path on disk is 3950 bytes: any name of 250 bytes in
    the last of them passes PATH_MAX (4096), though each name fits."""
    parts: list[str] = []
    while len(os.fsencode(root.joinpath(*parts))) + 201 < 3949:
        parts.append("d" * 200)
    parts.append("e" * (3950 - len(os.fsencode(root.joinpath(*parts))) - 1))
    root.joinpath(*parts).mkdir(parents=True)
    assert len(os.fsencode(root.joinpath(*parts))) == 3950
    return "/".join(parts)


@pytest.fixture
async def folder(aiohttp_client: AiohttpClient, tmp_path: Path) -> tuple[Client, Path, str]:
    root = tmp_path / "share"
    (root / "dir").mkdir(parents=True)
    (root / "f.txt").write_bytes(b"data")
    deep = deep_folders(root) + "/" + "x" * 250
    store = LocalStore(root)
    app = app_for(store, source=Source("file", str(root)), policy=ALL_FLAGS)
    return await aiohttp_client(app), root, deep


def snapshot(root: Path) -> list[str]:
    return sorted(
        str(Path(d, n).relative_to(root))
        for d, dirs, files in os.walk(root)
        for n in (*dirs, *files)
        if ".bucketdav" not in Path(d, n).parts
    )


def url(name: str) -> str:
    return "/" + "/".join(quote(part, safe="") for part in name.split("/"))


REQUESTS = [
    pytest.param("PUT", "{name}", {}, id="put"),
    pytest.param("MKCOL", "{name}/", {}, id="mkcol"),
    pytest.param("COPY", "f.txt", {"Destination": "/{name}"}, id="copy-destination"),
    pytest.param("MOVE", "f.txt", {"Destination": "/{name}"}, id="move-destination"),
    pytest.param("GET", "{name}", {}, id="get"),
    pytest.param("HEAD", "{name}", {}, id="head"),
    pytest.param("GET", "{name}/", {}, id="get-listing"),
    pytest.param("PROPFIND", "{name}", {"Depth": "0"}, id="propfind"),
    pytest.param("PROPFIND", "dir/{name}/", {"Depth": "1"}, id="propfind-dir"),
    pytest.param("DELETE", "{name}", {}, id="delete"),
]


@pytest.mark.parametrize("which", [*LONG_NAMES, "deep-path"])
@pytest.mark.parametrize(("method", "target", "headers"), REQUESTS)
async def test_a_name_the_folder_cannot_hold_is_400(
    folder: tuple[Client, Path, str], method: str, target: str, headers: dict[str, str],
    which: str,
) -> None:
    client, root, deep = folder
    name = LONG_NAMES.get(which, deep)
    before = snapshot(root)
    filled = {k: url(v.format(name=name).lstrip("/")) for k, v in headers.items()
              if k == "Destination"}
    resp = await client.request(
        method, url(target.format(name=name)), data=b"body" if method == "PUT" else None,
        headers={**headers, **filled},
    )
    assert resp.status == 400, await resp.text()
    if method != "HEAD":
        text = await resp.text()
        assert "too long" in text and "bytes" in text
    assert snapshot(root) == before

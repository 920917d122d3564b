"""A real browser opens uploaded objects: a script in them never runs, images and media
still display, and a share opted in with ``trusted_html`` runs them as before.

The attack: a writer uploads ``page.html`` (or an SVG) whose script reads another file
with the credentials of whoever opens it, in the gateway's origin. A real
``bucketdav serve`` process serves two local folders from a config file, ``/plain/`` with
the defaults and ``/trusted/`` with ``trusted_html = true``; the pages are uploaded with
PUT, as any writer would, and headless Chromium opens them.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import urllib.request
import wave
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.compat.chromium import (
    BROWSER_TIMEOUT,
    devtools,
    png_pixels,
    run_chromium,
)
from tests.gatewayproc import running_gateway

pytestmark = pytest.mark.compat

SECRET = "launch-code-42"
# Synchronous XHR: the read is done before the load event, so the DOM dump shows it.
STEAL = (
    "var x = new XMLHttpRequest(); x.open('GET', 'secret/plan.txt', false); x.send(); "
    "document.documentElement.setAttribute('data-ran', 'read:' + x.responseText); "
    "document.title = 'ran';"
)
PAGE = (
    "<!doctype html><html><head><title>untouched</title>"
    "<style>body { background: #00ff00; margin: 0 }</style></head>"
    f"<body><script>{STEAL}</script><img src=\"red.png\" width=\"300\" height=\"300\">"
    "</body></html>"
)
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200">'
    '<rect width="200" height="200" fill="blue"/>'
    f"<script>{STEAL}</script></svg>"
)
RED, GREEN = b"\xff\x00\x00", b"\x00\xff\x00"


def png(width: int, height: int, rgb: bytes) -> bytes:
    """A plain 8-bit RGB PNG of one colour."""
    raw = b"".join(b"\x00" + rgb * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def wav(seconds: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x10" * 8000 * seconds)
    return out.getvalue()


def put(url: str, body: bytes, content_type: str) -> None:
    request = urllib.request.Request(
        url, data=body, method="PUT", headers={"Content-Type": content_type}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 201


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``bucketdav serve`` with /plain/ (defaults) and /trusted/ (trusted_html), each
    holding a secret, an image and a sound; the pages are uploaded through it."""
    root = tmp_path_factory.mktemp("browser-objects")
    config = root / "shares.toml"
    tables = []
    for name, extra in (("plain", ""), ("trusted", "trusted_html = true\n")):
        folder = root / name
        (folder / "secret").mkdir(parents=True)
        (folder / "secret" / "plan.txt").write_text(SECRET)
        (folder / "red.png").write_bytes(png(300, 300, RED))
        (folder / "snd.wav").write_bytes(wav())
        tables.append(f'[[share]]\npath = "/{name}/"\nsource = "{folder}"\n{extra}')
    config.write_text("\n".join(tables))
    with running_gateway("--config", str(config)) as gateway:
        for name in ("plain", "trusted"):
            put(f"{gateway.url}/{name}/page.html", PAGE.encode(), "text/html")
            put(f"{gateway.url}/{name}/pic.svg", SVG.encode(), "image/svg+xml")
        yield gateway.url


async def dom_of(url: str, profile: Path) -> str:
    return (await run_chromium(profile, "--dump-dom", url)).decode("utf-8")


@pytest.mark.parametrize("name", ["page.html", "pic.svg"])
async def test_a_script_in_an_uploaded_object_does_not_run(
    base_url: str, tmp_path: Path, name: str
) -> None:
    dom = await dom_of(f"{base_url}/plain/{name}", tmp_path / "profile")
    assert "<script>" in dom, "the object itself was rendered"
    assert 'data-ran="' not in dom
    assert SECRET not in dom
    if name == "page.html":
        assert "<title>untouched</title>" in dom


@pytest.mark.parametrize("name", ["page.html", "pic.svg"])
async def test_a_trusted_html_share_runs_it(base_url: str, tmp_path: Path, name: str) -> None:
    # The control: the same object on the opted-in share runs and reads the secret, so
    # the test above would fail if the policy did not hold.
    dom = await dom_of(f"{base_url}/trusted/{name}", tmp_path / "profile")
    assert f'data-ran="read:{SECRET}"' in dom


async def test_images_and_inline_styles_still_display(base_url: str, tmp_path: Path) -> None:
    shot = tmp_path / "page.png"
    await run_chromium(
        tmp_path / "profile", f"--screenshot={shot}", "--window-size=600,400",
        f"{base_url}/plain/page.html",
    )
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (600, 400)
    assert RED in pixels, "the page's same-origin image is shown"
    assert GREEN in pixels, "the page's inline style applies"


async def evaluate(ws: aiohttp.ClientWebSocketResponse, expression: str, ident: int) -> Any:
    """The value of ``expression`` in the page, or None while the page has no context
    to evaluate it in (it is still loading)."""
    await ws.send_json({"id": ident, "method": "Runtime.evaluate",
                        "params": {"expression": expression, "returnByValue": True}})
    while True:
        message = json.loads(await ws.receive_str(timeout=BROWSER_TIMEOUT))
        if message.get("id") == ident:
            return message.get("result", {}).get("result", {}).get("value")


async def test_media_still_plays(base_url: str, tmp_path: Path) -> None:
    # Chromium shows a sound or video in a media document; a policy that blocked its
    # source (a bare `sandbox` does) would leave it at HAVE_NOTHING forever.
    probe = ("(() => { const m = document.querySelector('video, audio'); "
             "return m ? [m.readyState, m.duration] : null; })()")
    async with devtools(f"{base_url}/plain/snd.wav", tmp_path / "profile") as ws:
        state = None
        for ident in range(1, int(BROWSER_TIMEOUT * 10)):
            state = await evaluate(ws, probe, ident)
            if state and state[0] >= 1:
                break
            await asyncio.sleep(0.1)
        assert state is not None and state[0] >= 1, f"the sound never loaded: {state}"
        assert state[1] == 1  # seconds: the whole file was read

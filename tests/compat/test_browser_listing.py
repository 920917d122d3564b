"""A real browser (headless Chromium) renders the folder listing: rows, escaping, script.

A real ``bucketdav serve`` process serves a bucket on s3rver, as tests/compat drives every
client; Chromium loads the page twice, once to dump the DOM as it stands after the page's
own script ran, once to take a screenshot, and once more over DevTools to use the filter
box and the sortable columns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import struct
import zlib
from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.gatewayproc import running_gateway
from tests.servers import S3RVER_PROFILE, client, create_bucket

pytestmark = pytest.mark.compat

# If this ran, the page title would change: it must stay text.
XSS_FILE = "<img src=x onerror=\"document.title='pwned'\">.txt"
XSS_KEY = "<script>document.title='pwned'</script>"  # a directory "<script>document.title='pwned'<"
BROWSER_TIMEOUT = 120.0


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "chromium is not installed: the browser listing test needs Debian's `chromium` "
        "package (run scripts/install-test-deps)"
    )


OBJECTS = {
    "alpha.txt": (b"a" * 1234, "text/plain"),
    "Quarterly report 2024.pdf": (b"p" * 3_456_789, "application/pdf"),
    XSS_FILE: (b"x", "text/plain"),
    XSS_KEY: (b"y", "text/plain"),
    "photos/cat.jpg": (b"c" * 40_000, "image/jpeg"),
    "zeta/readme.md": (b"z", "text/markdown"),
}


@pytest.fixture(scope="module")
def base_url(s3rver: str) -> Iterator[str]:
    """``bucketdav serve`` over an s3rver bucket holding a few files; its base URL."""
    bucket = create_bucket(s3rver, profile=S3RVER_PROFILE)
    s3: Any = client(s3rver, S3RVER_PROFILE)
    for key, (body, ctype) in OBJECTS.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=ctype)
    with running_gateway(f"s3://{bucket}", "--endpoint-url", s3rver, "--force-path-style",
                         "--profile", S3RVER_PROFILE) as gateway:
        yield gateway.url


def chromium_command(profile: Path, *args: str) -> list[str]:
    return [
        chromium_binary(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]


def browser_env() -> dict[str, str]:
    """No proxy settings: the gateway is on 127.0.0.1."""
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


async def run_chromium(profile: Path, *args: str) -> bytes:
    """Run headless Chromium to completion (the server runs on this same event loop)."""
    command = chromium_command(profile, *args)
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=browser_env(),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), BROWSER_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"chromium did not finish within {BROWSER_TIMEOUT:.0f}s: {command}")
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {err.decode()[-2000:]}"
    return out


class Dom(HTMLParser):
    """Rows in document order, their visible names, and the tags that exist."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[str, str]] = []  # (class, data-name)
        self.labels: list[str] = []
        self.tags: list[str] = []
        self.title = ""
        self._label_depth = 0
        self._in_title = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        self.tags.append(tag)
        if tag == "tr" and "data-name" in attrs:
            self.rows.append((attrs.get("class", ""), attrs["data-name"]))
        if tag == "span" and attrs.get("class") == "label":
            self._label_depth = 1
            self.labels.append("")
        elif tag == "span" and self._label_depth:
            self._label_depth += 1
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._label_depth:
            self._label_depth -= 1
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._label_depth:
            self.labels[-1] += data
        if self._in_title:
            self.title += data


def png_pixels(data: bytes) -> tuple[int, int, set[bytes]]:
    """Width, height and the set of distinct pixels of an 8-bit PNG (a tiny decoder)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, bytearray()
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0, "only 8-bit, non-interlaced PNGs"
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    assert len(raw) == height * (stride + 1)
    prev = bytearray(stride)
    pixels: set[bytes] = set()
    for y in range(height):
        start = y * (stride + 1)
        filter_type = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            if filter_type == 1:
                line[i] = (line[i] + a) & 0xFF
            elif filter_type == 2:
                line[i] = (line[i] + b) & 0xFF
            elif filter_type == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 0xFF
            elif filter_type == 4:
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        pixels.update(bytes(line[i : i + channels]) for i in range(0, stride, channels * 7))
        prev = line
    return width, height, pixels


async def test_chromium_renders_the_listing_with_escaped_names(
    base_url: str, tmp_path: Path
) -> None:
    dom_html = (
        await run_chromium(tmp_path / "profile-dom", "--dump-dom", base_url + "/")
    ).decode("utf-8")
    dom = Dom(dom_html)
    names = [name for _, name in dom.rows]
    assert sorted(names) == sorted(
        [
            "alpha.txt",
            "Quarterly report 2024.pdf",
            XSS_FILE,
            "<script>document.title='pwned'<",
            "photos",
            "zeta",
        ]
    )
    # The page's own script ran (its nonce satisfied the CSP): folders come first,
    # although the store listed "alpha.txt" before "photos/".
    kinds = [kind for kind, _ in dom.rows]
    assert kinds == ["dir"] * 3 + ["file"] * 3
    # Hostile names are shown as text and nothing in them ran.
    assert XSS_FILE in dom.labels
    assert "<script>document.title='pwned'</" in dom.labels
    assert "img" not in dom.tags
    assert dom.tags.count("script") == 1
    assert dom.title == "Index of /"
    assert "6 entries" in dom_html


async def test_chromium_screenshot_of_the_listing(base_url: str, tmp_path: Path) -> None:
    shot = tmp_path / "listing.png"
    await run_chromium(
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        "--window-size=1000,700",
        base_url + "/",
    )
    assert shot.exists(), "chromium wrote no screenshot"
    data = shot.read_bytes()
    assert len(data) > 5_000, "a screenshot of a listing is more than a few KB"
    width, height, pixels = png_pixels(data)
    assert (width, height) == (1000, 700)
    assert len(pixels) > 16, "the screenshot shows more than a blank page"


class Page:
    """One tab of a headless Chromium, driven over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def evaluate(self, expression: str) -> Any:
        self.next_id += 1
        await self.ws.send_json(
            {
                "id": self.next_id,
                "method": "Runtime.evaluate",
                "params": {"expression": expression, "returnByValue": True},
            }
        )
        while True:
            message = json.loads(await self.ws.receive_str(timeout=BROWSER_TIMEOUT))
            if message.get("id") == self.next_id:
                result = message["result"]
                assert "exceptionDetails" not in result, result["exceptionDetails"]
                return result["result"].get("value")


@contextlib.asynccontextmanager
async def browser_page(url: str, profile: Path) -> AsyncIterator[Page]:
    """Chromium with its DevTools port open on ``url``; stopped on exit."""
    proc = await asyncio.create_subprocess_exec(
        *chromium_command(profile, "--remote-debugging-port=0", url),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=browser_env(),
    )
    try:
        # Chromium writes the port it picked into the profile folder.
        port_file = profile / "DevToolsActivePort"
        for _ in range(int(BROWSER_TIMEOUT * 10)):
            if port_file.exists() and port_file.read_text().strip():
                break
            assert proc.returncode is None, "chromium exited before opening its DevTools port"
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            [target] = [t for t in targets if t["type"] == "page" and t["url"] == url]
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                loaded = (
                    f"location.href === {json.dumps(url)} && document.readyState === 'complete'"
                )
                for _ in range(int(BROWSER_TIMEOUT * 10)):
                    if await page.evaluate(loaded):
                        break
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail(f"chromium did not load {url}")
                yield page
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


VISIBLE_ROWS = "[...document.querySelectorAll('#rows tr')].filter(r => !r.hidden)" \
    ".map(r => r.dataset.name)"


def type_filter(text: str) -> str:
    return (
        "(() => { const f = document.getElementById('filter'); "
        f"f.value = {json.dumps(text)}; f.dispatchEvent(new Event('input')); "
        f"return {VISIBLE_ROWS}; }})()"
    )


async def test_the_filter_box_and_sortable_columns_work_in_chromium(
    base_url: str, tmp_path: Path
) -> None:
    async with browser_page(base_url + "/", tmp_path / "profile-cdp") as page:
        assert await page.evaluate(type_filter("PHO")) == ["photos"]
        assert await page.evaluate("document.getElementById('shown').textContent") == "1 shown"
        assert await page.evaluate(type_filter("no such name")) == []
        assert await page.evaluate("document.getElementById('nomatch').hidden") is False
        assert len(await page.evaluate(type_filter(""))) == 6

        click_size = "document.querySelector('button[data-key=size]').click()"
        await page.evaluate(click_size)
        assert await page.evaluate(VISIBLE_ROWS) == [
            "<script>document.title='pwned'<",
            "photos",
            "zeta",
            XSS_FILE,  # 1 byte
            "alpha.txt",  # 1234 bytes
            "Quarterly report 2024.pdf",  # 3.3 MiB
        ]
        await page.evaluate(click_size)  # again: descending, folders still first
        assert await page.evaluate(VISIBLE_ROWS) == [
            "zeta",
            "photos",
            "<script>document.title='pwned'<",
            "Quarterly report 2024.pdf",
            "alpha.txt",
            XSS_FILE,
        ]
        sort_state = "document.querySelector('th.size').getAttribute('aria-sort')"
        assert await page.evaluate(sort_state) == "descending"
        assert await page.evaluate("document.title") == "Index of /"

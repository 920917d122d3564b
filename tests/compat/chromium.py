"""Headless Chromium for the browser tests: run it to completion (DOM dump, screenshot),
or keep it open on one page and talk to that page over the DevTools protocol."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

BROWSER_TIMEOUT = 120.0


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "chromium is not installed: the browser tests need Debian's `chromium` "
        "package (run scripts/install-test-deps)"
    )


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


@contextlib.asynccontextmanager
async def devtools(url: str, profile: Path) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """Chromium on ``url`` and a DevTools socket to its page; stopped on exit."""
    proc = await asyncio.create_subprocess_exec(
        *chromium_command(profile, "--remote-debugging-port=0", url),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=browser_env(),
    )
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(int(BROWSER_TIMEOUT * 10)):
            if port_file.exists() and port_file.read_text().strip():
                break
            assert proc.returncode is None, "chromium exited before opening its DevTools port"
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        async with aiohttp.ClientSession() as session:
            for _ in range(int(BROWSER_TIMEOUT * 10)):
                async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    pages = [t for t in await resp.json()
                             if t["type"] == "page" and t["url"] == url]
                if pages:
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"chromium opened no page on {url}")
            async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield ws
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


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
    """Chromium on ``url``, once the page has loaded; stopped on exit."""
    async with devtools(url, profile) as ws:
        page = Page(ws)
        loaded = f"location.href === {json.dumps(url)} && document.readyState === 'complete'"
        for _ in range(int(BROWSER_TIMEOUT * 10)):
            if await page.evaluate(loaded):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"chromium did not load {url}")
        yield page

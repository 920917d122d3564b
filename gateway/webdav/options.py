"""OPTIONS: what a client learns about the server before it mounts it."""

from __future__ import annotations

from aiohttp import web


def options_answer(allow: str) -> web.Response:
    """The same answer on every path, existing or not: Finder and Windows decide at mount
    time from ``DAV: 1, 2`` whether they may write (class 2: locks). No store call.
    ``allow`` is the app's whole method table."""
    return web.Response(
        status=200,
        headers={"DAV": "1, 2", "MS-Author-Via": "DAV", "Allow": allow, "Content-Length": "0"},
    )

"""A server of ranges of the benchmark content, for the readers that check every piece at
its offset (the limit, the staggered readers): it can answer one range from the wrong place,
so a test can watch the reader catch it."""

from __future__ import annotations

from aiohttp import web

from bench import dataset

SIZE = 3 * dataset.MiB + 5  # not a multiple of 8: pieces of two lengths


def ranged_app(shift_piece_at: int | None = None) -> tuple[web.Application, list[str]]:
    """Serves ranges of the benchmark content at ``/obj``; with ``shift_piece_at``, the range
    starting there is answered from one byte further on (a wrong offset, right length).
    Returns the app and the Range headers it has seen."""
    seen: list[str] = []

    async def get(request: web.Request) -> web.Response:
        first, last = request.http_range.start, request.http_range.stop
        assert first is not None and last is not None
        seen.append(request.headers["Range"])
        at = first + (1 if first == shift_piece_at else 0)
        body = dataset.content(at, last - first)
        headers = {"Content-Range": f"bytes {first}-{last - 1}/{SIZE}"}
        return web.Response(status=206, body=body, headers=headers)

    app = web.Application()
    app.router.add_get("/obj", get)
    return app, seen

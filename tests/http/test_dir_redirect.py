"""A directory URL without its slash redirects to the slash form, keeping the query exactly
as the client sent it.

The redirect used to append the decoded query: ``?a=%26b%23c`` became ``?a=%26b#c`` (a
different query, and a fragment), and ``%0D%0A`` made the reply an empty connection
close, since a header cannot hold CR/LF.
"""

from __future__ import annotations

import pytest

from tests.apps import memory_app, raw_request, serving


@pytest.mark.parametrize(
    "query",
    [
        "a=%26b%23c",
        "x=%0D%0A",
        "x=%0D%0ASet-Cookie:%20evil=1",
        "q=a+b&c=%2B&d",
        "e=%C3%A9&%25=%",
        "",
    ],
)
async def test_the_redirect_keeps_the_raw_query_byte_for_byte(query: str) -> None:
    app = memory_app()
    app.stores["/"].put_sync("dir/x", b"1")
    target = "/dir" + ("?" + query if query else "")
    async with serving(app.app) as base:
        reply = await raw_request(base, "GET", target)
    assert reply.status == 301
    assert reply.headers["location"] == "/dir/" + ("?" + query if query else "")
    assert "set-cookie" not in reply.headers


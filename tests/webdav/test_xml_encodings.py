"""An XML body declaring an encoding the parser cannot use is a 400 naming it, never a 500.

Expat reads UTF-8, UTF-16 and the single-byte encodings; ``utf-7``, ``utf-32``,
``shift_jis`` and names it does not know used to escape the parser as a ValueError or a
LookupError, and the client got "internal error".
"""

from __future__ import annotations

import pytest
from pytest_aiohttp import AiohttpClient

from tests.apps import memory_app

BODIES = {
    "PROPFIND": '<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
    "PROPPATCH": (
        '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
        '<Z:color xmlns:Z="urn:z">red</Z:color></D:prop></D:set></D:propertyupdate>'
    ),
    "LOCK": (
        '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
        "<D:locktype><D:write/></D:locktype></D:lockinfo>"
    ),
}
ENCODINGS = ["utf-7", "UTF-32", "shift_jis", "euc-jp", "gb2312", "x-no-such-encoding"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("method", sorted(BODIES))
async def test_an_unusable_declared_encoding_is_400(
    aiohttp_client: AiohttpClient, method: str, encoding: str
) -> None:
    app = memory_app()
    store = app.stores["/"]
    store.put_sync("f.txt", b"x")
    client = await aiohttp_client(app.app)
    body = f'<?xml version="1.0" encoding="{encoding}"?>{BODIES[method]}'.encode()
    resp = await client.request(
        method, "/f.txt", data=body, headers={"Content-Type": "application/xml"}
    )
    assert resp.status == 400
    text = await resp.text()
    assert encoding in text and "UTF-8" in text
    # Nothing was locked or set: a plain PUT-free follow-up LOCK still gets the file.
    relock = await client.request(
        "LOCK", "/f.txt", data=BODIES["LOCK"].encode(), headers={"Timeout": "Second-60"}
    )
    assert relock.status == 200


@pytest.mark.parametrize("encoding", ["utf-8", "ISO-8859-1", "us-ascii"])
async def test_encodings_the_parser_reads_still_work(
    aiohttp_client: AiohttpClient, encoding: str
) -> None:
    app = memory_app()
    app.stores["/"].put_sync("f.txt", b"x")
    client = await aiohttp_client(app.app)
    body = f'<?xml version="1.0" encoding="{encoding}"?>{BODIES["PROPFIND"]}'.encode()
    resp = await client.request("PROPFIND", "/f.txt", data=body, headers={"Depth": "0"})
    assert resp.status == 207

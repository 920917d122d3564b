"""PROPFIND Depth 1 reads its members' dead properties a listing page at a time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pytest_aiohttp import AiohttpClient

from gateway.app import make_app
from gateway.state import MemoryState
from tests.apps import gateway_for
from tests.memorystore import MemoryStore
from tests.webdav.davxml import D, multistatus, propfind_body

COLOR = "{urn:x}color"


class CountingState(MemoryState):
    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    async def props_get(self, scope: str, key: str) -> dict[str, str]:
        self.calls["props_get"] += 1
        return await super().props_get(scope, key)

    async def props_get_many(self, scope: str, keys: Sequence[str]) -> list[dict[str, str]]:
        self.calls["props_get_many"] += 1
        return await super().props_get_many(scope, keys)


async def test_one_state_call_per_listing_page_and_none_for_live_names(
    aiohttp_client: AiohttpClient,
) -> None:
    store = MemoryStore()
    store.list_page_size = 10
    for i in range(25):
        store.put_sync(f"d/f{i:02d}", b"x")
    gateway = gateway_for(store)
    gateway.state = state = CountingState()
    client: Any = await aiohttp_client(make_app(gateway))
    body = ('<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
            '<x:color xmlns:x="urn:x">red</x:color></D:prop></D:set></D:propertyupdate>')
    for path in ("/d/f03", "/d/f17"):
        assert (await client.request("PROPPATCH", path, data=body)).status == 207
    state.calls.clear()
    resp = await client.request("PROPFIND", "/d/", headers={"Depth": "1"},
                                data=propfind_body(D + "getcontentlength", COLOR))
    answers = multistatus(await resp.read())
    assert len(answers) == 26
    assert {href for href, a in answers.items() if COLOR in a.ok()} == {"/d/f03", "/d/f17"}
    assert answers["/d/f17"].ok()[COLOR].text == "red"
    # the folder itself, then one per page (3), and one for the last file, which waits
    # for the listing's end in case a "f24/" followed
    assert state.calls == {"props_get": 1, "props_get_many": 4}
    state.calls.clear()
    resp = await client.request("PROPFIND", "/d/", headers={"Depth": "1"},
                                data=propfind_body(D + "getcontentlength"))
    assert len(multistatus(await resp.read())) == 26
    assert state.calls == {}  # only live properties asked for: nothing read

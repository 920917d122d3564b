"""Create-only at the commit, whatever the share's flags: two creators of one new name sent at
once get exactly one success (SEMANTICS, "Concurrent creators").

* ``PUT`` with ``If-None-Match: *`` asks for a create even under ``--allow-overwrite``: of two
  such PUTs of one new name, one is 201 and the other 412, and the object holds the winner's
  bytes (RFC 9110: the condition is the request's, not the share's);
* ``MKCOL`` of one new name twice: one 201, the other 405 (the name exists by then).

The real app over a store that ignores create-only conditions and leaves a moment between its
look and its write (``LaxStore``, as s3rver does): both requests pass the handler's checks
before either commits, so the answer is decided at the commit.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.settings import Policy
from tests.apps import ALL_FLAGS, app_for
from tests.engine.test_guard import LaxStore

BODIES = (b"the first body", b"the second body, longer")


async def test_two_puts_with_if_none_match_star_under_allow_overwrite_one_wins(
    aiohttp_client: Any,
) -> None:
    store = LaxStore()
    client = await aiohttp_client(app_for(store, policy=ALL_FLAGS))

    async def put(data: bytes) -> int:
        resp = await client.put("/x.txt", data=data, headers={"If-None-Match": "*"})
        return int(resp.status)

    statuses = list(await asyncio.gather(*(put(b) for b in BODIES)))
    assert sorted(statuses) == [201, 412]
    assert store.objects["x.txt"].data == BODIES[statuses.index(201)]


@pytest.mark.parametrize("policy", [Policy(), ALL_FLAGS], ids=["default", "allow-overwrite"])
async def test_two_mkcols_of_one_new_name_one_201_one_405(aiohttp_client: Any, policy: Policy
                                                          ) -> None:
    store = LaxStore()
    client = await aiohttp_client(app_for(store, policy=policy))

    async def mkcol() -> int:
        return int((await client.request("MKCOL", "/new/")).status)

    statuses = list(await asyncio.gather(mkcol(), mkcol()))
    assert sorted(statuses) == [201, 405]
    assert "new/" in store.objects

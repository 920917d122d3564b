"""COPY to a new name is create-only at its commit (SEMANTICS, COPY and MOVE: "A file copied
or moved to a new name in default mode is created only if the name is still free when the copy
commits"), and so is any COPY that says ``Overwrite: F``, even with --allow-overwrite.

The real app over a store that ignores create-only conditions and leaves a moment between its
look and its write (``LaxStore``, as s3rver does): two COPYs to one new name sent at once
both pass the handler's checks before either commits, so the answer is decided at the commit.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.settings import EngineSettings, Policy
from tests.apps import ALL_FLAGS, app_for
from tests.engine.test_guard import LaxStore

SOURCES = {"a.txt": b"the first source", "b.txt": b"the second source, longer"}


async def copy_both(aiohttp_client: Any, policy: Policy, overwrite: str
                    ) -> tuple[list[int], LaxStore]:
    store = LaxStore()
    for key, data in SOURCES.items():
        store.put_sync(key, data)
    client = await aiohttp_client(app_for(store, policy=policy,
                                          engine=EngineSettings(metadata_ttl=0.001)))

    async def copy(source: str) -> int:
        resp = await client.request("COPY", f"/{source}",
                                    headers={"Destination": "/x.txt", "Overwrite": overwrite})
        return int(resp.status)

    statuses = list(await asyncio.gather(*(copy(s) for s in SOURCES)))
    return statuses, store


@pytest.mark.parametrize(("policy", "overwrite"), [(Policy(), "T"), (Policy(), "F"),
                                                   (ALL_FLAGS, "F")],
                         ids=["default", "default-overwrite-F", "allow-overwrite-F"])
async def test_two_copies_to_one_new_name_one_wins(aiohttp_client: Any, policy: Policy,
                                                   overwrite: str) -> None:
    statuses, store = await copy_both(aiohttp_client, policy, overwrite)
    assert sorted(statuses) == [201, 412]
    winner = list(SOURCES.values())[statuses.index(201)]
    assert store.objects["x.txt"].data == winner


async def test_with_allow_overwrite_and_overwrite_t_both_copies_write(aiohttp_client: Any
                                                                      ) -> None:
    """Replacing is allowed there: each COPY writes a whole version, the last one stays."""
    statuses, store = await copy_both(aiohttp_client, ALL_FLAGS, "T")
    assert set(statuses) <= {201, 204} and 201 in statuses
    assert store.objects["x.txt"].data in SOURCES.values()

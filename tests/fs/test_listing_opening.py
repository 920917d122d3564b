"""A listing opens with two first pages asked for at once, a small one and a full one:
whichever answers first starts it, and every entry comes out once, in order."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.engine import Engine
from gateway.errors import GatewayError
from gateway.fs.listing import FIRST_KEYS, Listing, _after, open_dir
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.settings import EngineSettings, Policy, ShareSettings, Source
from gateway.storage.base import ListPage, ObjectInfo
from tests.memorystore import MemoryStore


@dataclass
class GatedStore(MemoryStore):
    """A first page (no token) of ``max_keys`` waits for its gate, if it has one, then
    fails if it has an error; cancelled ones are counted. ``releases``: the gate a first
    page opens once answered (``{small: full}``: the full page after the small one)."""

    gates: dict[int, asyncio.Event] = field(default_factory=dict)
    errors: dict[int, GatewayError] = field(default_factory=dict)
    cancelled: list[int] = field(default_factory=list)
    releases: dict[int, int] = field(default_factory=dict)

    async def list_page(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        if token is None and max_keys in self.gates:
            try:
                await self.gates[max_keys].wait()
            except asyncio.CancelledError:
                self.cancelled.append(max_keys)
                raise
        if token is None and max_keys in self.errors:
            self.calls["list"] += 1
            raise self.errors[max_keys]
        page = await super().list_page(prefix, delimiter, token, max_keys)
        if token is None and max_keys in self.releases:
            self.gates[self.releases[max_keys]].set()
        return page


def folder(names: list[str], held: tuple[int, ...] = ()) -> GatedStore:
    store = GatedStore()
    store.gates = {keys: asyncio.Event() for keys in held}
    for name in names:
        store.put_sync("d/" + name, b"x")
    return store


def share_of(store: MemoryStore) -> Share:
    return Share(ShareSettings("/", Source("s3", "b", ""), policy=Policy()),
                 Engine(EngineSettings()).view(store))


# Files with a subfolder now and then: the small page may end on a key or on a prefix.
NAMES = [f"f{i:04}" + ("/x" if i % 7 == 0 else "") for i in range(2500)]
LISTED = [f"f{i:04}" for i in range(2500)]


@pytest.fixture
async def unretrieved() -> AsyncIterator[list[dict[str, Any]]]:
    """The asyncio errors nobody retrieved ('Task exception was never retrieved')."""
    seen: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    yield seen
    gc.collect()
    assert seen == []


async def read_all(entries: Listing) -> tuple[list[int], list[str]]:
    runs: list[int] = []
    names: list[str] = []
    async for run in entries.batches():
        runs.append(len(run))
        names += [e.name for e in run]
    return runs, names


@pytest.mark.parametrize("shift", [0, 3, 6])
async def test_the_small_page_first_then_the_full_one_past_it_lists_each_entry_once(
    shift: int, unretrieved: Any
) -> None:
    store = folder(NAMES[shift:], held=(1000,))
    entries = await open_dir(share_of(store), DavPath(("d",), True))
    assert isinstance(entries, Listing)
    assert store.calls["list"] == 1  # the small page; the full one waits at its gate
    runs = entries.batches()
    first = await anext(runs)
    assert 0 < len(first) <= FIRST_KEYS
    store.gates[1000].set()
    rest = [e.name for run in [r async for r in runs] for e in run]
    assert [e.name for e in first] + rest == LISTED[shift:]
    assert store.calls["list"] == 1 + 3  # and the full pages, none twice


async def test_the_full_page_first_lists_alone_and_the_small_one_is_cancelled(
    unretrieved: Any
) -> None:
    store = folder(NAMES, held=(FIRST_KEYS,))
    entries = await open_dir(share_of(store), DavPath(("d",), True))
    assert isinstance(entries, Listing)
    runs, names = await read_all(entries)
    assert names == LISTED and runs[0] > FIRST_KEYS
    await asyncio.sleep(0)
    assert store.cancelled == [FIRST_KEYS] and store.calls["list"] == 3


async def test_a_folder_the_small_page_holds_does_without_the_full_one(
    unretrieved: Any
) -> None:
    names = [f"f{i:03}" for i in range(FIRST_KEYS)]
    store = folder(names, held=(1000,))
    entries = await open_dir(share_of(store), DavPath(("d",), True))
    assert isinstance(entries, Listing)
    assert (await read_all(entries))[1] == names
    await asyncio.sleep(0)
    assert store.cancelled == [1000]
    missing = folder([], held=(1000,))  # nothing there: no folder, and no full page
    assert await open_dir(share_of(missing), DavPath(("d",), True)) is None
    await asyncio.sleep(0)
    assert missing.cancelled == [1000]


async def test_an_opened_listing_never_read_cancels_the_full_page(unretrieved: Any) -> None:
    store = folder(NAMES, held=(1000,))
    entries = await open_dir(share_of(store), DavPath(("d",), True))
    assert isinstance(entries, Listing)
    await entries.aclose()
    await asyncio.sleep(0)
    assert store.cancelled == [1000]


@pytest.mark.parametrize("failing, held", [
    ((FIRST_KEYS,), (1000,)),  # the small page fails while the full one is on its way
    ((1000,), (FIRST_KEYS,)),  # the full page fails first
    ((1000,), ()),             # both answer at once, the full one with an error
    ((FIRST_KEYS,), ()),       # both answer at once, the small one with an error
    ((FIRST_KEYS, 1000), ()),  # both fail: one error, the other one retrieved quietly
])
async def test_a_first_page_that_fails_fails_the_opening_once(
    failing: tuple[int, ...], held: tuple[int, ...], unretrieved: Any
) -> None:
    store = folder(NAMES, held=held)
    for keys in failing:
        store.errors[keys] = GatewayError(f"store down ({keys})")
    with pytest.raises(GatewayError, match="store down"):
        await open_dir(share_of(store), DavPath(("d",), True))
    await asyncio.sleep(0)
    assert store.cancelled == list(held)


def test_the_full_first_page_goes_on_past_the_last_name_of_the_small_one() -> None:
    """In store order (UTF-8 bytes, code points for str), keys and prefixes alike."""
    full = ListPage(tuple(info(k) for k in ["d/a", "d/b", "d/c", "d/é"]),
                    ("d/a0/", "d/b/", "d/c0/"), "t")
    assert _after(full, "d/b/") == ListPage((info("d/c"), info("d/é")), ("d/c0/",), "t")
    assert _after(full, "d/b") == ListPage((info("d/c"), info("d/é")), ("d/b/", "d/c0/"),
                                           "t")
    assert _after(full, "") == full


def info(key: str) -> ObjectInfo:
    return ObjectInfo(key, 1, '"e"', datetime(2026, 1, 1, tzinfo=UTC))


async def test_a_full_page_that_fails_after_the_small_one_fails_the_listing_once(
    unretrieved: Any
) -> None:
    store = folder(NAMES, held=(1000,))
    store.errors[1000] = GatewayError("store down")
    entries = await open_dir(share_of(store), DavPath(("d",), True))
    assert isinstance(entries, Listing)
    runs = entries.batches()
    assert len(await anext(runs)) <= FIRST_KEYS
    store.gates[1000].set()
    with pytest.raises(GatewayError, match="store down"):
        await anext(runs)

"""Directory listings from delimited store listings: shadowing, markers, hidden names."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.engine import Engine
from gateway.fs.listing import FIRST_KEYS, Entry, Listing, list_dir, open_dir
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.settings import EngineSettings, Policy, ShareSettings, Source
from gateway.storage.base import ListPage
from tests.memorystore import MemoryStore


def store_with(keys: list[str], page: int = 1000) -> MemoryStore:
    store = MemoryStore()
    store.list_page_size = page
    for key in keys:
        store.put_sync(key, key.encode())
    return store


async def listing(
    store: MemoryStore, prefix: str = "", show_noise: bool = False
) -> list[tuple[str, bool]]:
    view = Engine(EngineSettings()).view(store)
    return [(e.name, e.is_dir) async for e in list_dir(view, prefix, show_noise)]


PAGES = [1, 2, 3, 1000]


@pytest.mark.parametrize("page", PAGES)
async def test_an_object_and_a_prefix_of_the_same_name_show_once_as_a_directory(
    page: int,
) -> None:
    store = store_with(["a", "a/x", "b"], page)
    assert await listing(store) == [("a", True), ("b", False)]


@pytest.mark.parametrize("page", PAGES)
async def test_shadowing_holds_across_keys_that_sort_between_a_and_a_slash(page: int) -> None:
    # "-" and "." sort before "/": they arrive between the object "a" and the prefix "a/".
    store = store_with(["a", "a!", "a-b", "a.txt", "a/x", "a0", "b"], page)
    assert sorted(await listing(store)) == [
        ("a", True),
        ("a!", False),
        ("a-b", False),
        ("a.txt", False),
        ("a0", False),
        ("b", False),
    ]


@pytest.mark.parametrize("page", PAGES)
async def test_nested_shadowing_keeps_every_other_name(page: int) -> None:
    store = store_with(["a", "a-", "a-/x", "a-b", "a.", "a./y", "a/z"], page)
    assert sorted(await listing(store)) == [
        ("a", True),
        ("a-", True),
        ("a-b", False),
        ("a.", True),
    ]


@pytest.mark.parametrize("page", PAGES)
async def test_an_object_and_an_empty_marker_of_the_same_name_show_once(page: int) -> None:
    store = store_with(["a", "a/"], page)
    assert await listing(store) == [("a", True)]


async def test_a_marker_object_shows_as_a_directory() -> None:
    store = store_with(["d/", "f"])
    assert await listing(store) == [("d", True), ("f", False)]


async def test_a_directorys_own_marker_is_not_listed_in_it() -> None:
    store = store_with(["d/", "d/f", "d/sub/"])
    assert await listing(store, "d/") == [("f", False), ("sub", True)]
    assert await listing(store, "d/sub/") == []


@pytest.mark.parametrize("page", PAGES)
async def test_keys_that_are_not_valid_paths_are_hidden(page: int) -> None:
    store = store_with(
        ["x//y", "./z", "../z", "back\\slash", "nul\x00", "ok", "x/fine", "d/../e"], page
    )
    assert await listing(store) == [("d", True), ("ok", False), ("x", True)]
    assert await listing(store, "x/") == [("fine", False)]
    assert await listing(store, "d/") == []


NOISE = ["._foo", ".DS_Store", "desktop.ini", "Thumbs.db", "._.", ".Spotlight-V100/x"]


async def test_client_noise_is_hidden_by_default() -> None:
    store = store_with([*NOISE, "real.txt", "._dir/x"])
    assert await listing(store) == [("real.txt", False)]


async def test_client_noise_is_shown_when_the_share_stores_it() -> None:
    store = store_with([*NOISE, "real.txt"])
    names = {name for name, _ in await listing(store, show_noise=True)}
    assert names == {"._foo", ".DS_Store", "desktop.ini", "Thumbs.db", "._.", ".Spotlight-V100",
                     "real.txt"}
    engine = Engine(EngineSettings())
    for policy, expected in ((Policy(), 1), (Policy(store_client_noise=True), 7)):
        share = Share(ShareSettings("/", Source("s3", "b", ""), policy=policy), engine.view(store))
        assert len([e async for e in share.listdir(DavPath((), True))]) == expected


async def test_entries_carry_the_objects_metadata() -> None:
    store = MemoryStore()
    info = store.put_sync("p/file.bin", b"12345", "application/x-thing")
    view = Engine(EngineSettings()).view(store)
    [entry] = [e async for e in list_dir(view, "p/")]
    assert entry == Entry("file.bin", False, 5, info.last_modified, info.etag,
                          "application/x-thing")


async def test_a_listing_streams_one_page_ahead_of_its_reader() -> None:
    """Without waiting for the last page, yet with the next one asked for while the reader
    renders this one (the store lists meanwhile); a reader that stops leaves nothing."""
    store = store_with([f"f{i:04}" for i in range(1000)], page=10)
    view = Engine(EngineSettings()).view(store)
    entries = list_dir(view, "")
    first = [await anext(entries) for _ in range(5)]
    assert [e.name for e in first] == ["f0000", "f0001", "f0002", "f0003", "f0004"]
    await asyncio.sleep(0.01)
    assert store.calls["list"] == 2  # this page and the next one, no more
    rest = [e async for e in entries]
    assert len(rest) == 995
    assert store.calls["list"] == 100
    stopped = list_dir(view, "")
    await anext(stopped)
    await stopped.aclose()
    await asyncio.sleep(0.01)
    assert store.calls["list"] <= 102


async def test_the_next_page_is_asked_for_before_the_reader_gets_this_one() -> None:
    """The reader renders a page without suspending: the next page's request must already
    be out by then, not wait for the reader's next await (the store's critical path)."""
    store = store_with([f"f{i:04}" for i in range(30)], page=10)
    view = Engine(EngineSettings()).view(store)
    runs = list_dir(view, "").batches()
    await anext(runs)
    assert store.calls["list"] == 2
    await runs.aclose()


async def test_files_waiting_for_a_possible_shadow_do_not_hold_up_the_rest() -> None:
    # "a" could be shadowed by "a/" until the listing passes it; the thousands of keys
    # "a-NNNN" in between must still flow out page by page.
    store = store_with(["a", *(f"a-{i:04}" for i in range(2000))], page=10)
    view = Engine(EngineSettings()).view(store)
    entries = list_dir(view, "")
    first = [await anext(entries) for _ in range(5)]
    assert all(e.name.startswith("a-") for e in first)
    assert store.calls["list"] <= 2
    rest = [e async for e in entries]
    expected = Counter(["a", *(f"a-{i:04}" for i in range(2000))])
    assert Counter(e.name for e in first + rest) == expected


def _expected(keys: set[str]) -> set[tuple[str, bool]]:
    """The listing of the root, computed the slow way."""
    dirs = {k.split("/", 1)[0] for k in keys if "/" in k}
    files = {k for k in keys if "/" not in k} - dirs
    return {(n, True) for n in dirs if n not in ("", ".", "..")} | {
        (n, False) for n in files if n not in (".", "..")
    }


@settings(max_examples=150, deadline=None)
@given(
    keys=st.sets(st.text(alphabet="ab-./", min_size=1, max_size=5), max_size=25),
    page=st.integers(1, 4),
)
def test_any_set_of_keys_lists_each_name_once_with_the_right_kind(
    keys: set[str], page: int
) -> None:
    store = store_with(sorted(keys), page)
    got = asyncio.run(listing(store))
    assert len(got) == len(set(got)), "no name appears twice"
    assert set(got) == _expected(keys)


class RepeatsPrefixes(MemoryStore):
    """Like s3rver: every later page repeats the common prefixes already returned."""

    async def list_page(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        page = await super().list_page(prefix, delimiter, token, max_keys)
        if token is None:
            return page
        earlier = await super().list_page(prefix, delimiter, None, 1000)
        seen = tuple(p for p in earlier.prefixes if p <= token)
        return ListPage(page.objects, seen + page.prefixes, page.next_token)


async def test_prefixes_a_store_repeats_on_later_pages_are_listed_once() -> None:
    store = RepeatsPrefixes()
    store.list_page_size = 2
    for key in ["a/1", "b/1", "c", "d/1", "e", "f"]:
        store.put_sync(key, b"x")
    assert await listing(store) == [
        ("a", True), ("b", True), ("c", False), ("d", True), ("e", False), ("f", False),
    ]


async def test_open_dir_answers_existence_from_the_first_page_it_then_lists_from() -> None:
    store = store_with(["d/a", "d/b", "m/", "top"], page=1)
    engine = Engine(EngineSettings())
    share = Share(ShareSettings("/", Source("s3", "b", ""), policy=Policy()), engine.view(store))
    entries = await open_dir(share, DavPath(("d",), True))
    assert entries is not None and store.calls["list"] == 1
    assert [e.name async for e in entries] == ["a", "b"]
    assert store.calls["list"] == 2  # that first page was used, not read again
    marked = await open_dir(share, DavPath(("m",), True))  # only its marker
    assert marked is not None and [e async for e in marked] == []
    assert await open_dir(share, DavPath(("nope",), True)) is None
    assert await open_dir(share, DavPath(("top",), True)) is None  # a file, not a folder
    empty = Share(ShareSettings("/", Source("s3", "b", ""), policy=Policy()),
                  engine.view(MemoryStore()))
    root = await open_dir(empty, DavPath((), True))  # the root exists, even empty
    assert root is not None and [e async for e in root] == []


async def test_a_big_folder_starts_with_a_small_page_then_goes_on_in_full_pages() -> None:
    """The first page (existence, status, first entries) is a short one: it comes sooner."""
    store = store_with([f"d/f{i:04}" for i in range(2500)])
    share = Share(ShareSettings("/", Source("s3", "b", ""), policy=Policy()),
                  Engine(EngineSettings()).view(store))
    entries = await open_dir(share, DavPath(("d",), True))
    assert isinstance(entries, Listing)
    runs = [len(run) async for run in entries.batches()]
    assert runs[0] <= FIRST_KEYS and sum(runs) == 2500
    assert store.calls["list"] == 1 + 3  # the small page, then the rest in full pages

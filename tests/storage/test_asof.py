"""AsOfStore over a store of versions that pages as S3 does (a page may end in the middle
of a key's versions): the version picked for each key, hidden delete markers, paging,
pinned reads and refused writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.errors import BadRequest, NotFound, NotPermitted, NotSupported
from gateway.storage.asof import AsOfStore
from gateway.storage.base import GetResult, ObjectInfo, ObjectVersion, VersionPage
from tests.memorystore import MemoryStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Versioned(MemoryStore):
    """A MemoryStore that also holds a version history, listed ``page`` entries at a time
    (versions of a key newest first, keys sorted, ``/`` rolled up into prefixes)."""

    def __init__(self, history: list[ObjectVersion], page: int) -> None:
        super().__init__()
        self.history = sorted(history, key=lambda v: (v.key, -v.last_modified.timestamp()))
        self.page = page
        self.read: list[tuple[str, str]] = []

    async def list_versions(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> VersionPage:
        self.calls["list_versions"] += 1
        entries: list[ObjectVersion | str] = []
        for v in self.history:
            if not v.key.startswith(prefix):
                continue
            rest = v.key[len(prefix):]
            if delimiter and delimiter in rest:
                rolled = prefix + rest.split(delimiter)[0] + delimiter
                if rolled not in entries:
                    entries.append(rolled)
            else:
                entries.append(v)
        start = int(token or 0)
        chunk = entries[start : start + min(self.page, max_keys)]
        more = start + len(chunk) < len(entries)
        return VersionPage(
            tuple(e for e in chunk if isinstance(e, ObjectVersion)),
            tuple(e for e in chunk if isinstance(e, str)),
            str(start + len(chunk)) if more else None,
        )

    def _version(self, key: str, version_id: str) -> ObjectVersion:
        for v in self.history:
            if v.key == key and v.version_id == version_id and not v.deleted:
                return v
        raise NotFound(f"no version {version_id} of {key!r}")

    async def head_version(self, key: str, version_id: str) -> ObjectInfo:
        v = self._version(key, version_id)
        return ObjectInfo(key, v.size, v.etag, v.last_modified)

    async def get_version(
        self,
        key: str,
        version_id: str,
        start: int | None = None,
        end: int | None = None,
        if_match: str | None = None,
    ) -> GetResult:
        self.read.append((key, version_id))
        info = await self.head_version(key, version_id)
        data = version_id.encode()[: info.size]

        async def body() -> AsyncIterator[bytes]:
            yield data

        return GetResult(info, 0, len(data), body())


def v(key: str, vid: str, minute: int, deleted: bool = False) -> ObjectVersion:
    return ObjectVersion(key, vid, at(minute), False, deleted, 0 if deleted else len(vid),
                         "" if deleted else f'"{vid}"')


HISTORY = [
    # a.txt: many versions, so a page of versions ends inside them
    *(v("a.txt", f"a{i}", i) for i in range(1, 8)),
    v("b.txt", "b1", 1), v("b.txt", "b2", 3, deleted=True), v("b.txt", "b3", 9),
    v("c.txt", "c1", 8),  # created after as_of
    v("d/x.txt", "x1", 2),
    v("e.txt", "e1", 1), v("e.txt", "e2", 2, deleted=True),
]
AS_OF = at(4) + timedelta(seconds=30)


@pytest.mark.parametrize("page", [1, 2, 3, 1000])
async def test_a_listing_picks_each_keys_version_at_as_of_across_pages(page: int) -> None:
    store = AsOfStore(Versioned(HISTORY, page), AS_OF)
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    token = None
    while True:
        listed = await store.list_page("", "/", token)
        objects += listed.objects
        prefixes += listed.prefixes
        token = listed.next_token
        if token is None:
            break
    assert [(o.key, o.etag) for o in objects] == [("a.txt", '"a4"')]  # b, e: deleted then
    assert prefixes == ["d/"]


async def test_head_and_get_name_the_picked_version() -> None:
    inner = Versioned(HISTORY, 2)
    store = AsOfStore(inner, AS_OF)
    assert (await store.head("a.txt")).etag == '"a4"'
    got = await store.get("a.txt")
    assert [c async for c in got.body] == [b"a4"]
    assert inner.read == [("a.txt", "a4")]
    for missing in ("b.txt", "c.txt", "e.txt", "zzz"):
        with pytest.raises(NotFound):
            await store.head(missing)
    assert (await store.head("d/x.txt")).etag == '"x1"'


async def test_a_pick_is_remembered_so_a_read_after_a_listing_lists_nothing() -> None:
    inner = Versioned(HISTORY, 1000)
    store = AsOfStore(inner, AS_OF)
    await store.list_page("", "/")
    listed = inner.calls["list_versions"]
    await store.get("a.txt")
    assert inner.calls["list_versions"] == listed


async def test_every_write_is_refused_naming_as_of() -> None:
    store = AsOfStore(Versioned(HISTORY, 10), AS_OF)
    for write in (store.put("n", b"x"), store.delete("a.txt"), store.copy("a.txt", "n"),
                  store.create_upload("n"), store.delete_many(["a.txt"])):
        with pytest.raises(NotPermitted, match="as_of"):
            await write


async def test_check_refuses_a_store_without_versions_and_a_future_time() -> None:
    with pytest.raises(NotSupported, match="as_of needs object versions"):
        await AsOfStore(MemoryStore(), AS_OF).check()
    future = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(BadRequest, match="in the future"):
        await AsOfStore(Versioned(HISTORY, 10), future).check()

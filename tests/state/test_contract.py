"""The StateStore contract, on ``memory`` and on a real ``redis-server``: one suite, both
backends (``connect`` in conftest.py gives each test clients of one fresh shared state)."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.errors import STATUS, status_for
from gateway.state import (
    EVERYTHING,
    LOCK_LIMITS,
    Busy,
    Invalidation,
    LockConflict,
    LockLimit,
    LockLimits,
    LockNotOwned,
    NoiseLimits,
    PropsLimit,
    StateStore,
)
from tests.state.conftest import Connect

S = "s3://bucket at http://store/share/"  # a scope as the gateway builds them


async def lock(
    state: StateStore, root: str, *, exclusive: bool = True, depth: str = "0",
    principal: str = "ann", seconds: float = 60, scope: str = S,
    limits: LockLimits = LOCK_LIMITS,
) -> str:
    record = await state.acquire(
        scope, root, exclusive=exclusive, depth="infinity" if depth == "infinity" else "0",
        owner="<D:href>me</D:href>", principal=principal, timeout=seconds, limits=limits,
    )
    return record.token


# ---- locks -------------------------------------------------------------------------------


async def test_a_lock_is_granted_and_read_back(connect: Connect) -> None:
    state = await connect()
    owner = '<D:owner xmlns:D="DAV:"><D:href>http://x/é</D:href></D:owner>'
    record = await state.acquire(S, "a/b", exclusive=True, depth="infinity", owner=owner,
                                 principal="ann", timeout=120, is_dir=True)
    assert record.token.startswith("urn:uuid:")
    assert (record.root, record.depth, record.exclusive, record.owner) == (
        "a/b", "infinity", True, owner)
    assert record.principal == "ann" and record.is_dir and record.timeout == 120
    assert 115 <= record.seconds_left(time.time()) <= 120
    other = await connect()
    assert await other.get(record.token) == record
    assert await other.count() == 1


async def test_exclusive_locks_conflict_on_the_resource(connect: Connect) -> None:
    a, b = await connect(), await connect()
    await lock(a, "doc")
    with pytest.raises(LockConflict) as info:
        await lock(b, "doc", principal="bob")
    assert info.value.root == "doc" and status_for(info.value) == 423
    with pytest.raises(LockConflict):
        await lock(b, "doc", exclusive=False, principal="bob")
    await lock(b, "doc", scope=S + "other/")  # another scope: no conflict


async def test_an_infinity_lock_on_an_ancestor_covers_descendants(connect: Connect) -> None:
    a, b = await connect(), await connect()
    await lock(a, "d", depth="0")
    await lock(b, "d/x")  # a depth-0 parent lock does not cover its children
    await lock(a, "e", depth="infinity")
    with pytest.raises(LockConflict) as info:
        await lock(b, "e/f/g")
    assert info.value.root == "e"
    await lock(b, "ef")  # a sibling whose name starts with the same letters


async def test_an_infinity_request_conflicts_with_locks_below(connect: Connect) -> None:
    a, b = await connect(), await connect()
    await lock(a, "p/q/r")
    with pytest.raises(LockConflict) as info:
        await lock(b, "p", depth="infinity")
    assert info.value.root == "p/q/r"
    with pytest.raises(LockConflict):
        await lock(b, "", depth="infinity")  # the scope's root
    await lock(b, "p", depth="0")  # depth 0 does not reach below


async def test_shared_locks_share_and_exclusive_ones_do_not(connect: Connect) -> None:
    a, b = await connect(), await connect()
    await lock(a, "s", exclusive=False, depth="infinity")
    await lock(b, "s", exclusive=False, principal="bob")
    await lock(b, "s/t", exclusive=False, principal="bob")
    with pytest.raises(LockConflict):
        await lock(b, "s/t/u", principal="bob")  # exclusive under a shared infinity lock
    await lock(a, "x")
    with pytest.raises(LockConflict):
        await lock(b, "x", exclusive=False, principal="bob")


@pytest.mark.parametrize("depth", ["0", "infinity"])
async def test_concurrent_acquires_from_separate_clients_grant_one(
    connect: Connect, depth: str
) -> None:
    clients = [await connect() for _ in range(12)]
    results = await asyncio.gather(
        *(lock(c, "race", depth=depth, principal=f"u{i}") for i, c in enumerate(clients)),
        return_exceptions=True,
    )
    granted = [r for r in results if isinstance(r, str)]
    assert len(granted) == 1
    assert all(isinstance(r, LockConflict) for r in results if not isinstance(r, str))
    assert await clients[0].count() == 1


async def test_a_burst_from_one_client_is_served(connect: Connect) -> None:
    """Many requests at once share a bounded set of connections rather than each opening
    its own (which made a burst of 2,000 fail as "unavailable")."""
    state = await connect()
    roots = [f"burst/{i}" for i in range(1500)]
    await asyncio.gather(*(lock(state, r, principal=f"u{i % 3}") for i, r in enumerate(roots)))
    assert len(await state.below(S, "burst")) == 1500


async def test_parent_and_child_racing_do_not_both_win(connect: Connect) -> None:
    for round_ in range(5):
        a, b = await connect(), await connect()
        base = f"r{round_}"
        results = await asyncio.gather(
            lock(a, base, depth="infinity"), lock(b, f"{base}/child", principal="bob"),
            return_exceptions=True,
        )
        assert sum(isinstance(r, str) for r in results) == 1


async def test_locks_expire(connect: Connect) -> None:
    a, b = await connect(), await connect()
    token = await lock(a, "gone", depth="infinity", seconds=0.3)
    assert await b.covering(S, "gone/x")
    await asyncio.sleep(0.5)
    assert await b.get(token) is None
    assert await b.covering(S, "gone/x") == []
    assert await b.below(S, "") == []
    assert await b.count() == 0
    await lock(b, "gone", principal="bob")  # free again


async def test_refresh_restarts_the_timeout(connect: Connect) -> None:
    a, b = await connect(), await connect()
    token = await lock(a, "kept", seconds=0.4)
    await asyncio.sleep(0.25)
    refreshed = await b.refresh(token, 1.0)
    assert refreshed is not None and refreshed.timeout == 1.0
    await asyncio.sleep(0.3)
    assert await a.get(token) is not None  # past the first timeout, alive
    assert await b.refresh("urn:uuid:nothing", 10) is None


async def test_release_by_another_principal_is_refused(connect: Connect) -> None:
    a, b = await connect(), await connect()
    token = await lock(a, "mine")
    with pytest.raises(LockNotOwned) as info:
        await b.release(token, "bob")
    assert status_for(info.value) == 403
    assert await b.get(token) is not None
    assert await b.release(token, "ann") is True
    assert await a.release(token, "ann") is False
    assert await a.get(token) is None


async def test_caps_per_resource_and_per_principal(connect: Connect) -> None:
    a, b = await connect(), await connect()
    limits = LockLimits(max_per_resource=2, max_per_principal=3)
    await lock(a, "f", exclusive=False, principal="p1", limits=limits)
    await lock(b, "f", exclusive=False, principal="p2", limits=limits)
    with pytest.raises(LockLimit) as info:
        await lock(b, "f", exclusive=False, principal="p3", limits=limits)
    assert info.value.what == "resource" and status_for(info.value) == 507
    await lock(a, "g", principal="p1", limits=limits)
    await lock(b, "h", principal="p1", scope=S + "2/", limits=limits)  # counted across scopes
    with pytest.raises(LockLimit) as info:
        await lock(a, "i", principal="p1", limits=limits)
    assert info.value.what == "principal" and info.value.held == 3
    await lock(a, "i", principal="p2", limits=limits)


async def test_covering_below_drop_and_created_marks(connect: Connect) -> None:
    a, b = await connect(), await connect()
    top = await lock(a, "t", depth="infinity", exclusive=False)
    leaf = await lock(a, "t/u/v", exclusive=False)
    zero = await lock(a, "t/u", exclusive=False)
    assert {r.token for r in await b.covering(S, "t/u")} == {top, zero}
    assert {r.token for r in await b.covering(S, "t/u/v")} == {top, leaf}
    assert {r.token for r in await b.below(S, "t")} == {leaf, zero}
    assert {r.token for r in await b.below(S, "")} == {top, leaf, zero}
    assert all(r.covers("t/u") for r in await b.covering(S, "t/u"))
    assert await b.note_created(top, "t/new") and await b.note_created(top, "t/u/deep")
    assert not await b.note_created("urn:uuid:none", "t/x")
    record = await a.get(top)
    assert record is not None and record.created == {"t/new", "t/u/deep"}
    assert await b.drop(S, "t/u", recursive=True) == 2
    record = await a.get(top)
    assert record is not None and record.created == {"t/new"}
    assert {r.token for r in await a.below(S, "")} == {top}
    assert await b.drop(S, "t", recursive=False) == 1
    assert await a.count() == 0


# ---- dead properties ---------------------------------------------------------------------


async def test_props_patch_get_and_remove(connect: Connect) -> None:
    a, b = await connect(), await connect()
    assert await a.props_get(S, "f.txt") == {}
    ms = "{urn:schemas-microsoft-com:}"
    after = await a.props_patch(
        S, "f.txt", {f"{ms}Win32FileAttributes": "00000020", "{http://ns/é}n": "<x>é</x>"}, []
    )
    assert after == await b.props_get(S, "f.txt")
    assert after["{http://ns/é}n"] == "<x>é</x>"
    after = await b.props_patch(S, "f.txt", {"{DAV:}x": "1"}, [f"{ms}Win32FileAttributes"])
    assert after == {"{http://ns/é}n": "<x>é</x>", "{DAV:}x": "1"}
    await a.props_patch(S, "f.txt", {}, ["{http://ns/é}n", "{DAV:}x", "{no}such"])
    assert await b.props_get(S, "f.txt") == {}


async def test_props_past_the_cap_change_nothing(connect: Connect) -> None:
    a = await connect()
    await a.props_patch(S, "k", {"{n}a": "x" * 50}, [], max_bytes=100)
    with pytest.raises(PropsLimit) as info:
        await a.props_patch(S, "k", {"{n}b": "y" * 50}, ["{n}c"], max_bytes=100)
    assert status_for(info.value) == 507 and info.value.size == 108
    assert await a.props_get(S, "k") == {"{n}a": "x" * 50}


async def test_props_follow_copy_move_and_delete(connect: Connect) -> None:
    a, b = await connect(), await connect()
    await a.props_patch(S, "src", {"{n}p": "1"}, [])
    await a.props_patch(S, "dst", {"{n}old": "gone"}, [])
    await b.props_copy(S, "src", "dst")
    assert await a.props_get(S, "dst") == {"{n}p": "1"}
    await b.props_move(S, "src", "moved")
    assert await a.props_get(S, "src") == {}
    assert await a.props_get(S, "moved") == {"{n}p": "1"}
    await b.props_copy(S, "nothing", "moved")  # a source without properties clears
    assert await a.props_get(S, "moved") == {}
    await b.props_delete(S, "dst")
    assert await a.props_get(S, "dst") == {}
    assert await a.props_get(S + "x/", "dst") == {}


async def test_props_prefix_forms(connect: Connect) -> None:
    a, b = await connect(), await connect()
    for key in ("dir/a", "dir/sub/b", "dirt", "other/x"):
        await a.props_patch(S, key, {"{n}k": key}, [])
    await a.props_patch(S, "copy/stale", {"{n}k": "stale"}, [])
    assert await b.props_copy_prefix(S, "dir/", "copy/") == 2
    assert await a.props_get(S, "copy/sub/b") == {"{n}k": "dir/sub/b"}
    assert await a.props_get(S, "copy/stale") == {}
    assert await a.props_get(S, "dir/a") == {"{n}k": "dir/a"}
    assert await b.props_move_prefix(S, "dir/", "moved/") == 2
    assert await a.props_get(S, "dir/a") == {}
    assert await a.props_get(S, "moved/a") == {"{n}k": "dir/a"}
    assert await a.props_get(S, "dirt") == {"{n}k": "dirt"}  # not under dir/
    assert await b.props_delete_prefix(S, "moved/") == 2
    assert await a.props_get(S, "moved/sub/b") == {}
    assert await a.props_get(S, "other/x") == {"{n}k": "other/x"}


# ---- the client-noise area ---------------------------------------------------------------


async def test_noise_put_get_move_drop(connect: Connect) -> None:
    a, b = await connect(), await connect()
    kept = await a.noise_put(S, "d/._f", b"\x00\x05meta", size=6, etag='"e1"',
                             content_type="application/octet-stream")
    got = await b.noise_get(S, "d/._f")
    assert got == kept and got.data == b"\x00\x05meta" and got.last_modified.tzinfo
    assert await b.noise_get(S + "x/", "d/._f") is None
    moved = await b.noise_move(S, "d/._f", "d/._g")
    assert moved is not None and moved.key == "d/._g" and moved.data == b"\x00\x05meta"
    assert (moved.size, moved.etag, moved.content_type) == (6, '"e1"', kept.content_type)
    assert await a.noise_get(S, "d/._f") is None
    assert await a.noise_move(S, "d/._f", "d/._h") is None
    assert await a.noise_count(S) == 1
    assert await a.noise_drop(S, "d/._g") is True
    assert await b.noise_drop(S, "d/._g") is False


async def test_noise_empty_bodies_are_kept_as_empty(connect: Connect) -> None:
    a, b = await connect(), await connect()  # Finder's first PUT of every file is empty
    await a.noise_put(S, "._empty", b"", size=0, etag='"d41d8cd98f00b204e9800998ecf8427e"')
    got = await b.noise_get(S, "._empty")
    assert got is not None and got.data == b"" and got.size == 0
    moved = await b.noise_move(S, "._empty", "._moved")
    assert moved is not None and moved.data == b""


async def test_noise_large_bodies_keep_metadata_only(connect: Connect) -> None:
    a = await connect()
    limits = NoiseLimits(max_body=10)
    kept = await a.noise_put(S, ".DS_Store", b"x" * 11, size=11, etag='"e"', limits=limits)
    assert kept.data is None
    got = await a.noise_get(S, ".DS_Store")
    assert got is not None and got.data is None and got.size == 11


async def test_noise_expires(connect: Connect) -> None:
    a, b = await connect(), await connect()
    await a.noise_put(S, "._x", b"1", size=1, etag='"e"', limits=NoiseLimits(ttl=0.3))
    assert await b.noise_get(S, "._x") is not None
    await asyncio.sleep(0.5)
    assert await b.noise_get(S, "._x") is None
    assert await b.noise_count(S) == 0


async def test_noise_byte_cap_evicts_the_oldest(connect: Connect) -> None:
    a, b = await connect(), await connect()
    limits = NoiseLimits(max_bytes=3 * 612)  # three entries of 100 bytes, 512 charged each
    for i in range(5):
        await a.noise_put(S, f"._{i}", bytes(100), size=100, etag='"e"', limits=limits)
    assert await b.noise_count(S) == 3
    assert [await b.noise_get(S, f"._{i}") is not None for i in range(5)] == [
        False, False, True, True, True]
    await b.noise_drop(S, "._2")
    await a.noise_put(S, "._5", bytes(100), size=100, etag='"e"', limits=limits)
    assert await b.noise_get(S, "._3") is not None  # the dropped one's bytes were returned


# ---- write guards ------------------------------------------------------------------------


async def test_a_guard_has_one_holder(connect: Connect) -> None:
    a, b = await connect(), await connect()
    async with a.guard(S, "new.txt"):
        with pytest.raises(Busy) as info:
            async with b.guard(S, "new.txt", wait=0):
                pass
        assert status_for(info.value) == 423
        async with b.guard(S, "other.txt", wait=0), b.guard(S + "x/", "new.txt", wait=0):
            pass
    async with b.guard(S, "new.txt", wait=0):
        pass


async def test_a_waiting_guard_gets_it_when_released(connect: Connect) -> None:
    a, b = await connect(), await connect()
    order: list[str] = []

    async def first() -> None:
        async with a.guard(S, "k"):
            order.append("a in")
            await asyncio.sleep(0.3)
            order.append("a out")

    task = asyncio.create_task(first())
    await asyncio.sleep(0.05)
    async with b.guard(S, "k", wait=5):
        order.append("b in")
    await task
    assert order == ["a in", "a out", "b in"]


async def test_a_guard_whose_holder_died_expires(connect: Connect) -> None:
    a, b, c = await connect(), await connect(), await connect()
    stale = a.guard(S, "k", ttl=0.4)
    await stale.__aenter__()  # not left in time: its holder hangs or died
    with pytest.raises(Busy):
        async with b.guard(S, "k", wait=0.1):
            pass
    started = time.monotonic()
    async with b.guard(S, "k", wait=3):
        assert time.monotonic() - started < 1.5
        await stale.__aexit__(None, None, None)  # the late holder does not free b's guard
        with pytest.raises(Busy):
            async with c.guard(S, "k", wait=0):
                pass


# ---- invalidation events -----------------------------------------------------------------


async def test_events_reach_every_client(connect: Connect) -> None:
    a, b = await connect(), await connect()
    seen_a: list[Invalidation] = []
    seen_b: list[Invalidation] = []
    a.subscribe(seen_a.append)
    unsubscribe = b.subscribe(seen_b.append)
    await b.publish(S, "dir/file.txt")
    await a.publish(S, "dir/", prefix=True)
    expected = [Invalidation(S, "dir/file.txt"), Invalidation(S, "dir/", prefix=True)]
    for _ in range(100):
        if seen_a == expected and seen_b == expected:
            break
        await asyncio.sleep(0.02)
    assert seen_a == expected and seen_b == expected
    unsubscribe()
    await a.publish(S, "later")
    for _ in range(100):
        if len(seen_a) == 3:
            break
        await asyncio.sleep(0.02)
    assert seen_a[-1] == Invalidation(S, "later") and len(seen_b) == 2


async def test_a_failing_subscriber_does_not_stop_the_others(connect: Connect) -> None:
    a, b = await connect(), await connect()
    seen: list[Invalidation] = []

    def broken(event: Invalidation) -> None:
        raise RuntimeError("a bug in one cache")

    a.subscribe(broken)
    a.subscribe(seen.append)
    await b.publish(S, "one")
    await b.publish(S, "two")
    for _ in range(100):
        if len(seen) == 2:
            break
        await asyncio.sleep(0.02)
    assert [e.key for e in seen] == ["one", "two"]


async def test_health(connect: Connect) -> None:
    state = await connect()
    assert isinstance(state, StateStore)
    await state.ping()
    assert state.available and await state.healthy()
    assert "password" not in state.description


def test_state_unavailable_is_503() -> None:
    from gateway.errors import StateUnavailable

    assert STATUS[StateUnavailable] == 503
    assert EVERYTHING.everything and not Invalidation(S, "").everything


async def test_props_of_many_keys_in_one_call(connect: Connect) -> None:
    a, b = await connect(), await connect()
    await a.props_patch(S, "d/x", {"{n}a": "1"}, [])
    await a.props_patch(S, "d/z/", {"{n}b": "2", "{n}c": "3"}, [])
    assert await b.props_get_many(S, ["d/x", "d/y", "d/z/", "d/x"]) == [
        {"{n}a": "1"}, {}, {"{n}b": "2", "{n}c": "3"}, {"{n}a": "1"}]
    assert await b.props_get_many(S, []) == []
    assert await b.props_get_many("other", ["d/x"]) == [{}]

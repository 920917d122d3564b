"""LOCK, UNLOCK and the LockService the writing methods call (RFC 4918 sections 6-7, 9.10-11).

The If-header checks are driven through PROPPATCH, a write this front-end owns; litmus'
conditional PUTs map onto the same checks.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, make_mocked_request
from lxml import etree
from pytest_aiohttp import AiohttpClient

from gateway.engine import Engine
from gateway.errors import InsufficientStorage, Locked, PreconditionFailed
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.settings import (
    EngineSettings,
    LimitSettings,
    Policy,
    SettingsError,
    ShareSettings,
    Source,
    build_settings,
)
from gateway.state import MemoryState
from gateway.webdav.lockmethods import parse_timeout
from gateway.webdav.lockservice import LockService
from tests.apps import app_for
from tests.memorystore import MemoryStore
from tests.webdav.davxml import D, activelock, lock_body, multistatus

TOKEN_HEADER = re.compile(r"<(urn:uuid:[0-9a-f-]{36})>")
FINDER_OWNER = "<D:owner><D:href>http://www.apple.com/webdav_fs/</D:href></D:owner>"
WIN32_BODY = (
    '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>'
    "<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set>"
    "</D:propertyupdate>"
)


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.put_sync("litmus/lockme", b"This is\na test file.\n")
    store.put_sync("litmus/notlocked", b"x")
    store.put_sync("coll/inner.txt", b"inner")
    return store


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, store: MemoryStore) -> TestClient:
    return await aiohttp_client(app_for(store))


async def lock(client: TestClient, path: str, body: str | None = None, **headers: str
               ) -> tuple[int, bytes, dict[str, str]]:
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    resp = await client.request("LOCK", path, data=lock_body() if body is None else body,
                                headers=hdrs)
    return resp.status, await resp.read(), dict(resp.headers)


async def token_of(client: TestClient, path: str, **headers: str) -> str:
    status, _, hdrs = await lock(client, path, **headers)
    assert status in (200, 201)
    match = TOKEN_HEADER.fullmatch(hdrs["Lock-Token"])
    assert match
    return match.group(1)


async def patch(client: TestClient, path: str, if_header: str | None = None) -> int:
    headers = {"If": if_header} if if_header is not None else {}
    resp = await client.request("PROPPATCH", path, data=WIN32_BODY, headers=headers)
    return resp.status


async def etag_of(client: TestClient, path: str) -> str:
    return (await client.head(path)).headers["ETag"]


# ---- LOCK -----------------------------------------------------------------------------


async def test_lock_answers_the_token_in_header_and_body(client: TestClient) -> None:
    status, body, headers = await lock(
        client, "/litmus/lockme", lock_body(owner=FINDER_OWNER), Depth="0",
        Timeout="Second-600",
    )
    assert status == 200
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    match = TOKEN_HEADER.fullmatch(headers["Lock-Token"])
    assert match
    active = activelock(body)
    assert active.findtext(f"{D}locktoken/{D}href") == match.group(1)
    assert active.find(f"{D}locktype/{D}write") is not None
    assert active.find(f"{D}lockscope/{D}exclusive") is not None
    assert active.findtext(f"{D}depth") == "0"
    assert active.findtext(f"{D}timeout") == "Second-600"
    assert active.findtext(f"{D}lockroot/{D}href") == "/litmus/lockme"
    owner = active.find(f"{D}owner")
    assert owner is not None
    assert owner.findtext(f"{D}href") == "http://www.apple.com/webdav_fs/"


async def test_the_owner_is_echoed_verbatim(client: TestClient) -> None:
    owner = '<D:owner xmlns:x="urn:x">me &amp; <x:i  a="1">you</x:i></D:owner>'
    _, body, _ = await lock(client, "/litmus/lockme", lock_body(owner=owner))
    assert b'<D:owner xmlns:x="urn:x">me &amp; <x:i  a="1">you</x:i></D:owner>' in body
    element = activelock(body).find(f"{D}owner")
    assert element is not None
    assert etree.tostring(element, method="text") == b"me & you"


@pytest.mark.parametrize(("header", "granted"), [
    ("Second-600", 600),
    ("Second-3600", 3600),
    ("Second-100000", 3600),
    ("Infinite", 3600),
    ("Infinite, Second-4100000000", 3600),
    ("Second-60, Infinite", 60),
    (None, 3600),
    ("bogus", 3600),
    ("Second-0600", 600),
    ("Second-" + "9" * 5000, 3600),  # past int()'s digit limit: the cap, not a 500
])
async def test_timeouts_grant_what_was_asked_up_to_an_hour(
    client: TestClient, header: str | None, granted: int
) -> None:
    headers = {"Timeout": header} if header else {}
    _, body, reply_headers = await lock(client, "/litmus/lockme", **headers)
    timeout = activelock(body).findtext(f"{D}timeout") or ""
    seconds = int(timeout.removeprefix("Second-"))
    assert granted - 2 <= seconds <= granted
    assert reply_headers["Timeout"] == timeout  # the reply says what was granted


async def test_lock_on_an_unmapped_url_creates_an_empty_placeholder(
    client: TestClient, store: MemoryStore
) -> None:
    status, body, headers = await lock(client, "/litmus/unmapped_url", Depth="0",
                                       If_None_Match="*")
    assert status == 201
    assert TOKEN_HEADER.fullmatch(headers["Lock-Token"])
    assert activelock(body).findtext(f"{D}lockroot/{D}href") == "/litmus/unmapped_url"
    assert store.objects["litmus/unmapped_url"].data == b""
    get = await client.get("/litmus/unmapped_url")
    assert get.status == 200 and await get.read() == b""


async def test_lock_on_an_unmapped_url_without_parent_is_a_409(
    client: TestClient, store: MemoryStore
) -> None:
    status, _, _ = await lock(client, "/no/such/file")
    assert status == 409
    assert "no/such/file" not in store.objects
    # no lock was left behind
    assert await patch(client, "/litmus/lockme") == 207


async def test_lock_on_unmapped_client_noise_stores_nothing(
    client: TestClient, store: MemoryStore
) -> None:
    status, _, headers = await lock(client, "/litmus/._lockme", lock_body(owner=FINDER_OWNER))
    assert status == 201
    assert "Lock-Token" in headers
    assert "litmus/._lockme" not in store.objects
    assert store.calls["put"] == 0


async def test_if_none_match_star_on_an_existing_resource_is_a_412(client: TestClient) -> None:
    status, _, _ = await lock(client, "/litmus/lockme", If_None_Match="*")
    assert status == 412


async def test_exclusive_locks_conflict(client: TestClient) -> None:
    await token_of(client, "/litmus/lockme", Depth="0")
    status, _, _ = await lock(client, "/litmus/lockme", Depth="0")
    assert status == 423
    status, _, _ = await lock(client, "/litmus/lockme", lock_body("shared"), Depth="0")
    assert status == 423
    assert await token_of(client, "/litmus/notlocked", Depth="0")


async def test_shared_locks_share_and_block_exclusive_ones(client: TestClient) -> None:
    s1, b1, _ = await lock(client, "/litmus/lockme", lock_body("shared"), Depth="0")
    s2, b2, _ = await lock(client, "/litmus/lockme", lock_body("shared"), Depth="0")
    assert (s1, s2) == (200, 200)
    assert activelock(b1).find(f"{D}lockscope/{D}shared") is not None
    t1 = activelock(b1).findtext(f"{D}locktoken/{D}href")
    t2 = activelock(b2).findtext(f"{D}locktoken/{D}href")
    assert t1 != t2
    status, _, _ = await lock(client, "/litmus/lockme", Depth="0")
    assert status == 423
    # a write needs one of the shared tokens, either one
    assert await patch(client, "/litmus/lockme") == 423
    assert await patch(client, "/litmus/lockme", f"(<{t1}>)") == 207
    assert await patch(client, "/litmus/lockme", f"(<{t2}>)") == 207


async def test_a_depth_infinity_collection_lock_covers_its_members(client: TestClient) -> None:
    token = await token_of(client, "/coll/", Depth="infinity")
    assert (await lock(client, "/coll/inner.txt", Depth="0"))[0] == 423
    assert await patch(client, "/coll/inner.txt") == 423
    assert await patch(client, "/coll/inner.txt", f"(<{token}>)") == 207
    # neon tags the list with the collection that holds the lock
    assert await patch(client, "/coll/inner.txt", f"<http://x/coll/> (<{token}>)") == 207


async def test_a_depth_0_collection_lock_leaves_members_free(client: TestClient) -> None:
    await token_of(client, "/coll/", Depth="0")
    assert await patch(client, "/coll/inner.txt") == 207
    assert (await lock(client, "/coll/inner.txt", Depth="0"))[0] == 200


async def test_a_member_lock_blocks_an_infinite_lock_on_the_collection(client: TestClient
                                                                      ) -> None:
    await token_of(client, "/coll/inner.txt", Depth="0")
    assert (await lock(client, "/coll/", Depth="infinity"))[0] == 423


@pytest.mark.parametrize("body", [
    "<D:lockinfo xmlns:D='DAV:'><D:lockscope><D:exclusive/></D:lockscope></D:lockinfo>",
    "<D:lockinfo xmlns:D='DAV:'><D:locktype><D:write/></D:locktype></D:lockinfo>",
    "<D:propfind xmlns:D='DAV:'/>",
    "<D:lockinfo",
])
async def test_a_bad_lock_body_is_a_400(client: TestClient, body: str) -> None:
    assert (await lock(client, "/litmus/lockme", body))[0] == 400


async def test_lock_depth_1_is_a_400(client: TestClient) -> None:
    assert (await lock(client, "/coll/", Depth="1"))[0] == 400


async def test_a_read_only_share_refuses_locks(aiohttp_client: AiohttpClient,
                                               store: MemoryStore) -> None:
    client = await aiohttp_client(app_for(store, policy=Policy(read_only=True)))
    status, body, _ = await lock(client, "/litmus/lockme")
    assert status == 403
    assert b"--read-only" in body


# ---- refresh --------------------------------------------------------------------------


async def test_refresh_with_the_token_in_an_untagged_list(client: TestClient) -> None:
    token = await token_of(client, "/litmus/lockme", Timeout="Second-600")
    status, body, _headers = await lock(client, "/litmus/lockme", "", If=f"(<{token}>)",
                                       Timeout="Second-1800")
    assert status == 200
    active = activelock(body)
    assert active.findtext(f"{D}locktoken/{D}href") == token
    assert int((active.findtext(f"{D}timeout") or "").removeprefix("Second-")) > 600


async def test_refresh_through_a_member_of_a_locked_collection(client: TestClient) -> None:
    token = await token_of(client, "/coll/", Depth="infinity")
    status, body, _ = await lock(client, "/coll/inner.txt", "",
                                 If=f"<http://h/coll/inner.txt> (<{token}>)")
    assert status == 200
    assert activelock(body).findtext(f"{D}lockroot/{D}href") == "/coll/"


async def test_refresh_without_a_matching_token_fails(client: TestClient) -> None:
    await token_of(client, "/litmus/lockme")
    assert (await lock(client, "/litmus/lockme", "", If="(<urn:uuid:nope>)"))[0] == 412
    assert (await lock(client, "/litmus/lockme", ""))[0] == 400
    assert (await lock(client, "/litmus/lockme", "", If="(<broken"))[0] == 400


# ---- UNLOCK ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["<{}>", "{}", " <{}> "])
async def test_unlock_releases_the_lock(client: TestClient, form: str) -> None:
    token = await token_of(client, "/litmus/lockme")
    resp = await client.request("UNLOCK", "/litmus/lockme",
                                headers={"Lock-Token": form.format(token)})
    assert resp.status == 204
    assert await patch(client, "/litmus/lockme") == 207
    assert await token_of(client, "/litmus/lockme")


async def test_unlock_with_an_unknown_token_is_a_409(client: TestClient) -> None:
    await token_of(client, "/litmus/lockme")
    for token, path in (("<opaquelocktoken:foobar>", "/litmus/lockme"),
                        (None, "/litmus/notlocked")):
        if token is None:
            token = f"<{await token_of(client, '/coll/inner.txt')}>"  # a lock elsewhere
        resp = await client.request("UNLOCK", path, headers={"Lock-Token": token})
        assert resp.status == 409
        root = etree.fromstring(await resp.read())
        assert [c.tag for c in root] == [D + "lock-token-matches-request-uri"]


async def test_unlock_without_a_token_is_a_400(client: TestClient) -> None:
    resp = await client.request("UNLOCK", "/litmus/lockme")
    assert resp.status == 400


# ---- the If header on writes (litmus' conditional PUTs) -------------------------------


async def test_litmus_conditional_writes(client: TestClient) -> None:
    token = await token_of(client, "/litmus/lockme", Depth="0")
    etag = await etag_of(client, "/litmus/lockme")
    bad = etag[:-3] + chr(ord(etag[-3]) + 1) + etag[-2:]
    cases = [
        (f"(<{token}> [{etag}])", 207),  # cond_put
        (f"(<DAV:no-lock> [{etag}])", 412),  # fail_cond_put
        (f"(<{token}>) (Not <DAV:no-lock>)", 207),  # cond_put_with_not
        (f"(<{token}x>) (Not <DAV:no-lock>)", 423),  # cond_put_corrupt_token
        (f"(<{token}> [{etag}]) (Not <DAV:no-lock> [{etag}])", 207),  # complex_cond_put
        (f"(<{token}> [{bad}]) (Not <DAV:no-lock> [{bad}])", 412),  # fail_complex_cond_put
        (f"<http://elsewhere:1/litmus/lockme> (<{token}>)", 207),  # tagged, other host
        (f"<https://proxy/litmus/lockme> (<{token}> [{bad}])", 412),
        (None, 423),
        ("(<DAV:no-lock", 400),
    ]
    for header, expected in cases:
        assert await patch(client, "/litmus/lockme", header) == expected, header


async def test_fail_cond_put_unlocked(client: TestClient) -> None:
    assert await patch(client, "/litmus/notlocked", "(<DAV:no-lock>)") == 412
    assert await patch(client, "/litmus/notlocked", "(Not <DAV:no-lock>)") == 207


# ---- the LockService contract ---------------------------------------------------------


@pytest.fixture
def share() -> Share:
    settings = ShareSettings("/", Source("s3", "bucket", ""))
    return Share(settings, Engine(EngineSettings()).view(MemoryStore()))


def p(text: str) -> DavPath:
    parts = tuple(x for x in text.split("/") if x)
    return DavPath(parts, text.endswith("/"))


def request_for(path: str, if_header: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"If": if_header} if if_header else {}
    return make_mocked_request("DELETE", path, headers=headers)


class Clock:
    """A wall clock the test moves forward (MemoryState's ``clock``)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def take(service: LockService, share: Share, path: str, *, depth: str = "0",
               exclusive: bool = True, timeout: int | None = 600,  # noqa: ASYNC109
               ) -> str:
    lock = await service.lock(share, p(path), is_dir=path.endswith("/"), exclusive=exclusive,
                              depth="infinity" if depth == "infinity" else "0", owner="",
                              timeout=timeout)
    return lock.token


async def test_check_write_recursive_sees_locks_below(share: Share) -> None:
    service = LockService()
    token = await take(service, share, "/d/sub/f")
    with pytest.raises(Locked):
        await service.check_write(request_for("/d/"), share, p("/d/"), recursive=True)
    assert await service.check_write(request_for("/d/"), share, p("/d/")) == set()
    submitted = request_for("/d/", f"</d/sub/f> (<{token}>)")
    assert await service.check_write(submitted, share, p("/d/"), recursive=True) == set()


async def test_check_write_returns_the_submitted_tokens_covering_the_path(share: Share) -> None:
    service = LockService()
    token = await take(service, share, "/d/", depth="infinity")
    request = request_for("/d/f", f"(<{token}>)")
    assert await service.check_write(request, share, p("/d/f")) == {token}


async def test_check_write_evaluates_etags_against_the_given_etag(share: Share) -> None:
    service = LockService()
    request = request_for("/f", '(["abc"])')
    await service.check_write(request, share, p("/f"), etag='"abc"')
    with pytest.raises(PreconditionFailed):
        await service.check_write(request, share, p("/f"), etag='"other"')
    with pytest.raises(PreconditionFailed):
        await service.check_write(request, share, p("/f"), etag=None)


async def test_untagged_conditions_do_not_apply_to_another_resource(share: Share) -> None:
    service = LockService()
    request = request_for("/src", '(["src-etag"])')  # e.g. COPY /src, checking /dst
    await service.check_write(request, share, p("/dst"), etag=None)


async def test_created_under_lock_lasts_until_unlock(share: Share) -> None:
    service = LockService()
    token = await take(service, share, "/new")
    assert not await service.created_under_lock(share, p("/new"), {token})
    await service.note_created(share, p("/new"), {token})
    assert await service.created_under_lock(share, p("/new"), {token})
    assert not await service.created_under_lock(share, p("/new"), {"urn:uuid:other"})
    assert not await service.created_under_lock(share, p("/other"), {token})
    assert await service.unlock(share, p("/new"), token)
    assert not await service.created_under_lock(share, p("/new"), {token})


async def test_forget_drops_the_locks(share: Share) -> None:
    service = LockService()
    await take(service, share, "/a/b")
    await take(service, share, "/a/", depth="0")
    await take(service, share, "/c")
    await service.forget(share, p("/c"), recursive=False)
    assert await service.discover(share, p("/c")) == []
    await service.forget(share, p("/a/"), recursive=True)  # MOVE's source
    assert await service.discover(share, p("/a/b")) == []
    assert await service.discover(share, p("/a/")) == []


async def test_expired_locks_disappear(share: Share) -> None:
    clock = Clock()
    service = LockService(MemoryState(clock))
    await take(service, share, "/f")
    clock.now += 601  # the clock moved past the timeout
    assert await service.discover(share, p("/f")) == []
    assert await take(service, share, "/f")


async def test_propfind_after_unlock_shows_no_lock(client: TestClient) -> None:
    token = await token_of(client, "/litmus/lockme")
    await client.request("UNLOCK", "/litmus/lockme", headers={"Lock-Token": f"<{token}>"})
    resp = await client.request("PROPFIND", "/litmus/lockme", headers={"Depth": "0"})
    props = multistatus(await resp.read())["/litmus/lockme"].ok()
    assert len(props[D + "lockdiscovery"]) == 0


async def test_an_expired_lock_below_does_not_break_a_recursive_check(share: Share) -> None:
    clock = Clock()
    service = LockService(MemoryState(clock))
    await take(service, share, "/d/sub/f", timeout=60)
    await take(service, share, "/d/sub/g")
    clock.now += 61
    with pytest.raises(Locked, match="g"):
        await service.check_write(request_for("/d/"), share, p("/d/"), recursive=True)


# ---- whole client sequences (with the PUT of the content front-end) -------------------


async def test_finder_copy_in_without_allow_overwrite(client: TestClient, store: MemoryStore
                                                      ) -> None:
    assert (await client.put("/litmus/new.txt", data=b"")).status == 201
    status, _, headers = await lock(client, "/litmus/new.txt", lock_body(owner=FINDER_OWNER),
                                    Depth="0", Timeout="Second-600")
    assert status == 200
    token = headers["Lock-Token"]
    put = await client.put("/litmus/new.txt", data=b"content", headers={"If": f"({token})"})
    assert put.status == 204
    again = await client.put("/litmus/new.txt", data=b"content 2", headers={"If": f"({token})"})
    assert again.status == 204  # created under the lock: rewritable until UNLOCK
    resp = await client.request("PROPFIND", "/litmus/new.txt", headers={"Depth": "0"})
    props = multistatus(await resp.read())["/litmus/new.txt"].ok()
    assert props[D + "getetag"].text == again.headers["ETag"]
    unlock = await client.request("UNLOCK", "/litmus/new.txt", headers={"Lock-Token": token})
    assert unlock.status == 204
    assert (await client.put("/litmus/new.txt", data=b"later")).status == 403
    assert store.objects["litmus/new.txt"].data == b"content 2"


async def test_windows_copy_in(client: TestClient, store: MemoryStore) -> None:
    assert (await client.put("/litmus/w.txt", data=b"")).status == 201
    status, _, headers = await lock(client, "/litmus/w.txt", Timeout="Second-3600")
    assert status == 200
    token = headers["Lock-Token"]
    assert await patch(client, "/litmus/w.txt", f"({token})") == 207
    put = await client.put("/litmus/w.txt", data=b"windows", headers={"If": f"({token})"})
    assert put.status == 204
    assert await patch(client, "/litmus/w.txt", f"({token})") == 207
    unlock = await client.request("UNLOCK", "/litmus/w.txt", headers={"Lock-Token": token})
    assert unlock.status == 204
    assert store.objects["litmus/w.txt"].data == b"windows"


async def test_lock_on_an_unmapped_url_then_put_with_the_token(
    client: TestClient, store: MemoryStore
) -> None:
    status, _, headers = await lock(client, "/litmus/fresh", Depth="0")
    assert status == 201
    token = headers["Lock-Token"]
    assert (await client.put("/litmus/fresh", data=b"one")).status == 423
    put = await client.put("/litmus/fresh", data=b"one", headers={"If": f"({token})"})
    assert put.status == 204
    put = await client.put("/litmus/fresh", data=b"two", headers={"If": f"({token})"})
    assert put.status == 204
    assert store.objects["litmus/fresh"].data == b"two"


async def test_locks_belong_to_keys_so_prefix_jails_never_collide() -> None:
    """Two users jailed to different prefixes see the same href for different objects;
    two mounts of the same keys see the same objects. Locks follow the objects."""
    engine, store = Engine(EngineSettings()), MemoryStore()

    def share(mount: str, prefix: str) -> Share:
        return Share(ShareSettings(mount, Source("s3", "b", prefix)), engine.view(store))

    alice, bob, alice_again = share("/", "alice/"), share("/", "bob/"), share("/x/", "alice/")
    doc = DavPath(("doc.txt",))
    locks = LockService()
    await locks.lock(alice, doc, is_dir=False, exclusive=True, depth="0", owner="", timeout=60)
    assert await locks.discover(bob, doc) == []
    await locks.lock(bob, doc, is_dir=False, exclusive=True, depth="0", owner="", timeout=60)
    with pytest.raises(Locked):
        await locks.lock(alice_again, doc, is_dir=False, exclusive=True, depth="0", owner="",
                   timeout=60)


# ---- caps: owner size, locks per resource and per user, timeout -----------------------

CAPS = LimitSettings(max_lock_owner=100, max_locks_per_resource=2, max_locks_per_user=3,
                     max_lock_timeout=7200)


@pytest.fixture
async def capped(aiohttp_client: AiohttpClient, store: MemoryStore) -> TestClient:
    return await aiohttp_client(app_for(store, limits=CAPS))


def sized_owner(size: int) -> str:
    shell = "<D:owner></D:owner>"
    return f"<D:owner>{'o' * (size - len(shell))}</D:owner>"


async def test_an_owner_past_the_cap_is_a_400_naming_the_flag(capped: TestClient) -> None:
    status, body, _ = await lock(capped, "/litmus/lockme", lock_body(owner=sized_owner(101)))
    assert status == 400 and b"--max-lock-owner" in body
    assert (await lock(capped, "/litmus/notlocked", lock_body(owner=sized_owner(100))))[0] == 200
    # The refused LOCK neither locked nor created anything.
    assert (await lock(capped, "/litmus/lockme"))[0] == 200
    status, body, _ = await lock(capped, "/litmus/new", lock_body(owner=sized_owner(101)))
    assert status == 400
    assert (await capped.get("/litmus/new")).status == 404


async def test_shared_locks_past_the_cap_are_a_507_naming_the_flag(capped: TestClient) -> None:
    for _ in range(2):
        assert (await lock(capped, "/litmus/lockme", lock_body("shared")))[0] == 200
    status, body, _ = await lock(capped, "/litmus/lockme", lock_body("shared"))
    assert status == 507 and b"--max-locks-per-resource" in body
    # An exclusive request conflicts with the locks there: that is the answer it gets.
    assert (await lock(capped, "/litmus/lockme"))[0] == 423


async def test_inherited_locks_count_toward_the_resource_cap(capped: TestClient) -> None:
    """Shared depth-infinity locks stacked on ancestors all show in a member's
    lockdiscovery: they count, so stacking cannot get past the cap."""
    shared_infinity = {"Depth": "infinity"}
    assert (await lock(capped, "/coll/", lock_body("shared"), **shared_infinity))[0] == 200
    assert (await lock(capped, "/coll/inner.txt", lock_body("shared")))[0] == 200
    status, body, _ = await lock(capped, "/coll/inner.txt", lock_body("shared"))
    assert status == 507 and b"covered by 2 locks" in body
    resp = await capped.request("PROPFIND", "/coll/inner.txt", headers={"Depth": "0"})
    props = multistatus(await resp.read())["/coll/inner.txt"].ok()
    assert len(props[D + "lockdiscovery"]) == 2


async def test_locks_past_the_user_cap_are_a_507_until_one_is_released(
    capped: TestClient, store: MemoryStore
) -> None:
    tokens = [await token_of(capped, f"/litmus/u{i}") for i in range(3)]
    status, body, _ = await lock(capped, "/litmus/u3")
    assert status == 507 and b"--max-locks-per-user" in body
    assert "litmus/u3" not in store.objects  # refused before the placeholder is written
    unlock = await capped.request("UNLOCK", "/litmus/u0", headers={"Lock-Token": tokens[0]})
    assert unlock.status == 204
    assert (await lock(capped, "/litmus/u3"))[0] == 201


async def test_the_timeout_cap_is_a_flag_and_refreshes_keep_to_it(capped: TestClient) -> None:
    status, body, headers = await lock(capped, "/litmus/lockme", Timeout="Infinite")
    assert status == 200 and headers["Timeout"] == "Second-7200"
    token = activelock(body).findtext(f"{D}locktoken/{D}href")
    status, body, headers = await lock(capped, "/litmus/lockme", "", If=f"(<{token}>)",
                                       Timeout="Second-999999")
    assert status == 200 and headers["Timeout"] == "Second-7200"
    assert activelock(body).findtext(f"{D}timeout") == "Second-7200"


async def test_expired_locks_count_toward_no_cap(share: Share) -> None:
    clock = Clock()
    service = LockService(MemoryState(clock), CAPS)
    await take(service, share, "/f0", timeout=60)
    for i in range(1, 3):
        await take(service, share, f"/f{i}")
    with pytest.raises(InsufficientStorage):
        await take(service, share, "/f3")
    clock.now += 61
    assert await take(service, share, "/f3")


async def test_the_user_cap_counts_each_user_apart(share: Share) -> None:
    service = LockService(limits=CAPS)
    for i in range(3):
        await service.lock(share, p(f"/a{i}"), is_dir=False, exclusive=True, depth="0", owner="",
                     timeout=60, principal="ann")
    with pytest.raises(InsufficientStorage, match="ann holds 3 locks"):
        await service.lock(share, p("/a3"), is_dir=False, exclusive=True, depth="0", owner="",
                     timeout=60, principal="ann")
    await service.lock(share, p("/a3"), is_dir=False, exclusive=True, depth="0", owner="",
                 timeout=60, principal="ben")


@pytest.mark.parametrize(("header", "seconds"), [
    ("Second-\u0661\u0662", None),  # non-ASCII digits are not a number of seconds
    ("Second-0", None),
    ("Second--5", None),
    ("Second-" + "9" * 13, None),
    ("Second-000000000000000060", 60),
])
def test_parse_timeout(header: str, seconds: int | None) -> None:
    assert parse_timeout(header) == seconds


async def test_lock_roots_show_in_the_asking_user_s_view() -> None:
    """A user jailed to a prefix sees the lock roots of its view, never the prefix."""
    engine, store = Engine(EngineSettings()), MemoryStore()

    def share(mount: str, prefix: str) -> Share:
        return Share(ShareSettings(mount, Source("s3", "b", prefix)), engine.view(store))

    whole, jailed = share("/s/", ""), share("/s/", "jail/")
    locks = LockService()
    await locks.lock(whole, p("/jail/d/"), is_dir=True, exclusive=False, depth="infinity",
               owner="", timeout=60, principal="ann")
    assert [lk.root for lk in await locks.discover(jailed, p("/d/f"))] == ["/s/d/"]
    assert [lk.root for lk in await locks.discover(whole, p("/jail/d/f"))] == ["/s/jail/d/"]
    await locks.lock(jailed, p("/mine"), is_dir=False, exclusive=True, depth="0", owner="",
               timeout=60, principal="bob")
    assert [lk.root for lk in await locks.discover(jailed, p("/mine"))] == ["/s/mine"]
    assert [lk.root for lk in await locks.discover(whole, p("/jail/mine"))] == ["/s/jail/mine"]
    # A lock above the jail covers the whole view: it shows as the view's root.
    above = LockService()
    await above.lock(whole, p("/"), is_dir=True, exclusive=True, depth="infinity", owner="",
               timeout=60, principal="ann")
    assert [lk.root for lk in await above.discover(jailed, p("/d/f"))] == ["/s/"]
    with pytest.raises(Locked) as refused:
        await above.check_write(request_for("/s/d/f"), jailed, p("/d/f"))
    assert "jail" not in refused.value.message


@pytest.mark.parametrize("name", ["max_lock_owner", "max_locks_per_resource",
                                  "max_locks_per_user", "max_lock_timeout"])
def test_a_lock_cap_below_one_is_refused_naming_its_flag(name: str, tmp_path: Path) -> None:
    flag = "--" + name.replace("_", "-")
    with pytest.raises(SettingsError, match=f"{flag} must be at least 1"):
        build_settings({name: 0}, str(tmp_path))

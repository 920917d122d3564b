"""Three replicas behind a round-robin balancer behave as one server (issue 10).

A real ``redis-server``, three ``bucketdav serve --state redis://...`` processes over moto
(and s3rver, which ignores ``If-None-Match``, for the creators' race) and a real HAProxy with
no affinity and a new server connection per request, so consecutive requests of one client
change replica (``tests/compat/cluster.py``). Every replica has a metadata TTL of an hour:
whatever one sees of another's write, only the shared invalidation can explain. Through
the balancer: litmus in permissive mode, the Finder and Windows replays, a davfs2 copy-in,
rclone copy and check; addressing the replicas directly: locks, read-your-writes and the
creators' race. Then ``--workers 2`` on one port, Redis stopped and started again under the
running replicas, and last a replica killed while requests go on.
"""

from __future__ import annotations

import asyncio
import filecmp
import functools
import http.client
import itertools
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.compat.cluster import (
    LONG_TTL,
    Cluster,
    fetch,
    is_ready,
    lockdiscovery,
    names_in,
    readyz,
    replica,
    run_cluster,
    samples,
    spread,
    wait_for,
)
from tests.compat.test_clients import davfs_mount, make_tree, rclone
from tests.compat.test_litmus import differences, parse_litmus, read_expected, run_litmus
from tests.compat.test_replays import (
    Client,
    Reply,
    finder_replay,
    lock_token,
    windows_replay,
)
from tests.gatewayproc import Process, bucketdav
from tests.integration.test_one_creator import body, put_racing
from tests.servers import S3RVER_PROFILE, RedisServer, client, create_bucket, run_redis
from tests.webdav.davxml import lock_body, multistatus

pytestmark = pytest.mark.compat

PERMISSIVE = {"allow_overwrite": True, "allow_delete": True, "allow_rename": True}
SHARES: dict[str, dict[str, Any]] = {
    "litmus-permissive": PERMISSIVE,
    "litmus-default": {},
    "finder": {},  # the replays expect default mode and an empty bucket each
    "windows": {},
    "davfs": {},
    "rclone": {},
    "state": {},  # locks, read-your-writes, Redis down, the kill
}
UA = "cluster-test"


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with run_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, redis: RedisServer, moto_server: str,
            s3rver: str) -> Iterator[Cluster]:
    race = {"endpoint_url": s3rver, "profile": S3RVER_PROFILE,
            "bucket": create_bucket(s3rver, profile=S3RVER_PROFILE, prefix="cluster")}
    with run_cluster(tmp_path_factory.mktemp("cluster"), redis, moto_server,
                     {**SHARES, "race": race}) as found:
        yield found


# ---- the balancer ---------------------------------------------------------------------------


def test_consecutive_requests_on_one_client_connection_go_round_the_replicas(
    cluster: Cluster,
) -> None:
    before = cluster.answered()
    parts = urlsplit(cluster.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    seen = []
    try:
        for _ in range(30):  # one keep-alive connection from the client's side
            conn.request("GET", "/state/")
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
            seen.append(resp.headers["X-Replica"])
    finally:
        conn.close()
    assert seen == list(itertools.islice(itertools.cycle(seen[:3]), 30))
    assert sorted(seen[:3]) == ["r0", "r1", "r2"]
    # The replicas' own counters agree: ten each, no more.
    wait_for(lambda: sum(cluster.answered().values()) - sum(before.values()) >= 30,
             "the counters to catch up")
    after = cluster.answered()
    assert {name: after[name] - before[name] for name in after} == {"r0": 10, "r1": 10, "r2": 10}


# ---- real clients through the balancer ----------------------------------------------------


@pytest.mark.parametrize("mode", ["permissive", "default"])
def test_litmus_through_the_balancer_gives_exactly_the_expected_results(
    cluster: Cluster, tmp_path: Path, mode: str
) -> None:
    """All 104 pass in permissive mode; in default mode only the semantics' refusals fail
    (litmus/default.txt, which test_litmus.py holds to SEMANTICS.md)."""
    before = cluster.answered()
    output = run_litmus(cluster.share(f"litmus-{mode}"), tmp_path)
    delta = spread(before, cluster.answered())
    results = parse_litmus(output)
    summary = {r: sum(1 for v in results.values() if v == r) for r in set(results.values())}
    print(f"litmus {mode} through the balancer: {summary}, requests per replica {delta}")
    assert results, f"litmus printed no results:\n{output}"
    changed = differences(results, read_expected(mode))
    assert not changed, f"litmus through the balancer differs from litmus/{mode}.txt:\n" + (
        "\n".join(changed) + f"\n{output}")
    if mode == "permissive":
        assert set(results.values()) == {"pass"}


def test_the_finder_replay_through_the_balancer(cluster: Cluster) -> None:
    before = cluster.answered()
    finder_replay(cluster.share("finder"), cluster.bucket("finder"))
    spread(before, cluster.answered())


def test_the_windows_replay_through_the_balancer(cluster: Cluster) -> None:
    before = cluster.answered()
    windows_replay(cluster.share("windows"), cluster.bucket("windows"))
    spread(before, cluster.answered())


def test_davfs2_copies_a_tree_in_through_the_balancer(cluster: Cluster, tmp_path: Path) -> None:
    source = tmp_path / "source"
    files = make_tree(source)
    before = cluster.answered()
    with davfs_mount(cluster.share("davfs"), tmp_path / "dav") as mnt:
        subprocess.run(["cp", "-r", str(source), str(mnt / "tree")], check=True, timeout=300)
    spread(before, cluster.answered())
    # Unmounted: every upload is done; the bucket holds the tree (folder markers aside).
    stored = cluster.bucket("davfs").objects()
    assert {k: v for k, v in stored.items() if not k.endswith("/")} == {
        f"tree/{name}": data for name, data in files.items()}
    for name, data in files.items():  # and every replica serves it
        for each in cluster.live():
            assert fetch(cluster.share("davfs", each), f"tree/{name}") == (200, data), name


def test_rclone_copies_and_checks_a_tree_through_the_balancer(
    cluster: Cluster, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    make_tree(source)
    remote = f":webdav,url='{cluster.share('rclone')}/',vendor=other:tree"
    before = cluster.answered()
    copied = rclone("copy", str(source), remote)
    assert copied.returncode == 0, copied.stderr
    checked = rclone("check", str(source), remote)
    assert checked.returncode == 0, checked.stderr
    back = tmp_path / "back"
    returned = rclone("copy", remote, str(back))
    assert returned.returncode == 0, returned.stderr
    spread(before, cluster.answered())
    for sub in ("", "docs", "docs/nested/deep", "media", "odd"):
        cmp = filecmp.dircmp(source / sub, back / sub)
        assert not cmp.left_only and not cmp.right_only and not cmp.diff_files, sub


# ---- shared state, replica by replica ------------------------------------------------------


def clients(cluster: Cluster, share: str = "state") -> list[Client]:
    """A client per live replica, addressing it directly."""
    return [Client(cluster.share(share, name), UA) for name in cluster.live()]


def test_a_lock_through_one_replica_conflicts_with_a_lock_through_another(
    cluster: Cluster,
) -> None:
    one, two, three = clients(cluster)
    assert one("MKCOL", "/locks/").status == 201
    path = "/locks/held.txt"
    locked = one("LOCK", path, lock_body(), Timeout="Second-600", Content_Type="text/xml")
    assert locked.status == 201, locked.body  # an unmapped URL: an empty resource
    token = lock_token(locked)
    for other in (two, three):
        refused = other("LOCK", path, lock_body(), Content_Type="text/xml")
        assert refused.status == 423, refused.body
        assert "Lock-Token" not in refused.headers
        assert other("PUT", path, b"without the token").status == 423
        folder = other("LOCK", "/locks/", lock_body(), Depth="infinity",
                       Content_Type="text/xml")
        assert folder.status in (207, 423) and "Lock-Token" not in folder.headers
    # Every replica reports the same lock: one token, one root.
    reported = [lockdiscovery(dav, path) for dav in (one, two, three)]
    assert reported == [[(token[1:-1], "/state/locks/held.txt")]] * 3
    # Its holder writes through another replica (the placeholder rule) and unlocks through
    # a third; then another replica may lock it.
    written = two("PUT", path, b"written under the lock", If=f"({token})")
    assert written.status == 204, written.body
    assert three("GET", path).body == b"written under the lock"
    assert three("UNLOCK", path, Lock_Token=token).status == 204
    assert lockdiscovery(one, path) == []
    again = two("LOCK", path, lock_body(), Content_Type="text/xml")
    assert again.status == 200, again.body
    assert one("UNLOCK", path, Lock_Token=lock_token(again)).status == 204


def test_a_put_through_one_replica_is_seen_at_once_through_the_next(cluster: Cluster) -> None:
    direct = clients(cluster)
    balanced = Client(cluster.share("state"), UA)
    assert direct[0]("MKCOL", "/fresh/").status == 201
    # Every replica learns what is there now: a 404 for the name, a listing without it.
    for dav in direct:
        assert dav("GET", "/fresh/new.txt").status == 404
        assert dav("PROPFIND", "/fresh/new.txt", Depth="0").status == 404
        assert names_in(dav, "/fresh/") == {"fresh"}
    # Through the balancer, with no pause: the PUT, the PROPFIND and the GET are answered by
    # three different replicas, each holding the old answer for an hour (--metadata-ttl).
    put = balanced("PUT", "/fresh/new.txt", b"fresh bytes")
    assert put.status == 201
    listed = balanced("PROPFIND", "/fresh/", Depth="1")
    got = balanced("GET", "/fresh/new.txt")
    assert len({replica(put), replica(listed), replica(got)}) == 3
    assert listed.status == 207
    assert {h.rsplit("/", 1)[-1] for h in multistatus(listed.body)} >= {"new.txt"}
    assert (got.status, got.body, got.headers["ETag"]) == (200, b"fresh bytes",
                                                            put.headers["ETag"])
    for dav in direct:
        assert dav("GET", "/fresh/new.txt").body == b"fresh bytes"
        assert names_in(dav, "/fresh/") == {"fresh", "new.txt"}
    # A replaced object too: every replica knows the zero-byte placeholder, then one replica
    # fills it and the others serve the new bytes at once.
    assert balanced("PUT", "/fresh/filled.txt", b"").status == 201
    for dav in direct:
        assert dav("GET", "/fresh/filled.txt").body == b""
    filled = direct[1]("PUT", "/fresh/filled.txt", b"the real content")
    assert filled.status == 204, filled.body
    for dav in direct:
        got = dav("GET", "/fresh/filled.txt")
        assert (got.status, got.body) == (200, b"the real content")
        assert got.headers["ETag"] == filled.headers["ETag"]


def test_two_creators_of_one_name_through_two_replicas_give_one_201_and_one_412(
    cluster: Cluster,
) -> None:
    """Over s3rver, which ignores If-None-Match: only the shared write guard decides."""
    s3 = client(cluster.endpoints["race"], S3RVER_PROFILE)
    urls = [cluster.replicas[name].url for name in cluster.live()]

    async def rounds() -> None:
        for i, (a, b) in enumerate(itertools.islice(itertools.cycle(
                itertools.combinations(urls, 2)), 9)):
            name = f"race/race-{i}.bin"
            bodies = [body(300 * 1024, f"{name}-a"), body(300 * 1024, f"{name}-b")]
            go = asyncio.Barrier(2)
            statuses = list(await asyncio.wait_for(asyncio.gather(
                put_racing(a, name, bodies[0], go), put_racing(b, name, bodies[1], go)), 60))
            assert sorted(statuses) == [201, 412], f"{name}: {statuses}"
            stored = s3.get_object(Bucket=cluster.buckets["race"],
                                   Key=name.removeprefix("race/"))["Body"].read()
            assert stored == bodies[statuses.index(201)], f"{name}: not the winner's bytes"

    asyncio.run(rounds())


# ---- --workers 2 on one port ----------------------------------------------------------------


@pytest.fixture(scope="module")
def workers(redis: RedisServer, moto_server: str) -> Iterator[Process]:
    name = create_bucket(moto_server, prefix="workers")
    with bucketdav(f"s3://{name}", "--endpoint-url", moto_server, "--workers", "2",
                   "--state", redis.url, "--metadata-ttl", str(LONG_TTL),
                   timeout=60) as server:
        yield server


def per_worker(server: Process) -> dict[str, float]:
    found = samples(server.admin, "bucketdav_worker_http_requests_total")
    return {dict(labels)["worker"]: value for labels, value in found.items()}


def both_answered(server: Process, before: dict[str, float]) -> None:
    after = per_worker(server)
    assert len(after) == 2
    assert all(after[w] > before.get(w, 0) for w in after), (before, after)


def test_two_workers_on_one_port_share_locks(workers: Process) -> None:
    dav = Client(workers.url, UA)  # a connection per request: the kernel picks a worker
    locked = dav("LOCK", "/locked.txt", lock_body(), Content_Type="text/xml")
    assert locked.status == 201
    token = lock_token(locked)
    before = per_worker(workers)
    for _ in range(16):
        assert dav("LOCK", "/locked.txt", lock_body(), Content_Type="text/xml").status == 423
        assert dav("PUT", "/locked.txt", b"no token").status == 423
    both_answered(workers, before)
    assert dav("PUT", "/locked.txt", b"mine", If=f"({token})").status == 204
    assert dav("UNLOCK", "/locked.txt", Lock_Token=token).status == 204
    again = dav("LOCK", "/locked.txt", lock_body(), Content_Type="text/xml")
    assert again.status == 200
    assert dav("UNLOCK", "/locked.txt", Lock_Token=lock_token(again)).status == 204


def test_two_workers_on_one_port_read_their_writes(workers: Process) -> None:
    dav = Client(workers.url, UA)
    assert dav("MKCOL", "/dir/").status == 201
    before = per_worker(workers)
    for _ in range(16):  # both workers learn the name is free (for an hour)
        assert dav("GET", "/dir/new.txt").status == 404
        assert names_in(dav, "/dir/") == {"dir"}
    both_answered(workers, before)
    assert dav("PUT", "/dir/new.txt", b"fresh").status == 201
    before = per_worker(workers)
    for _ in range(16):
        got = dav("GET", "/dir/new.txt")
        assert (got.status, got.body) == (200, b"fresh")
        assert names_in(dav, "/dir/") == {"dir", "new.txt"}
    both_answered(workers, before)


# ---- Redis stopped and started under the running replicas ----------------------------------


def burst(cluster: Cluster, tag: str, each: int = 12) -> set[int]:
    """Statuses of ``each`` LOCKs (then UNLOCKs) of new names at once on every replica."""

    def lock_unlock(dav: Client, i: int) -> int:
        path = f"/burst-{tag}-{i}.txt"  # a name of its own, whichever replica
        locked = dav("LOCK", path, lock_body(), Content_Type="text/xml")
        if locked.status == 201:
            assert dav("UNLOCK", path, Lock_Token=lock_token(locked)).status == 204
        return locked.status

    jobs = [(dav, n * each + i) for n, dav in enumerate(clients(cluster)) for i in range(each)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        return set(pool.map(lambda job: lock_unlock(*job), jobs))


def test_while_redis_is_down_reads_go_on_and_locks_are_503_until_it_is_back(
    cluster: Cluster,
) -> None:
    balanced = Client(cluster.share("state"), UA)
    assert balanced("MKCOL", "/outage/").status == 201
    assert balanced("PUT", "/outage/doc.txt", b"kept").status == 201
    live = [cluster.replicas[name] for name in cluster.live()]

    def reads_work() -> None:
        for _ in range(len(live)):  # one round of the balancer
            got = balanced("GET", "/outage/doc.txt")
            assert (got.status, got.body) == (200, b"kept"), got.body
            assert names_in(balanced, "/outage/") == {"outage", "doc.txt"}

    assert burst(cluster, "before") == {201}  # each replica's Redis pool is full now
    cluster.redis.stop()
    try:
        reads_work()
        refused = balanced("LOCK", "/outage/doc.txt", lock_body(), Content_Type="text/xml")
        assert refused.status == 503 and b"state store" in refused.body, refused.body
        for process in live:
            wait_for(functools.partial(is_ready, process, False), "readiness to say not ready")
            assert b"state store" in readyz(process)[1]
        # HAProxy has no ready replica left: it sends to the live ones, and reads go on.
        wait_for(lambda: replica(balanced("GET", "/outage/doc.txt")).startswith("live-"),
                 "the balancer to fall back to live replicas")
        reads_work()
        refused = balanced("LOCK", "/outage/doc.txt", lock_body(), Content_Type="text/xml")
        assert refused.status == 503 and b"state store" in refused.body
    finally:
        cluster.redis.start()  # the same port, empty (persistence off)
    for process in live:
        wait_for(functools.partial(is_ready, process, True), "readiness after Redis is back")
    wait_for(lambda: not replica(balanced("GET", "/outage/doc.txt")).startswith("live-"),
             "the balancer to use ready replicas again")
    # No restart: every connection works again at once (none stale from before the outage),
    # locks conflict across replicas again, and writes are seen everywhere.
    assert burst(cluster, "after") == {201}
    one, two, *_ = clients(cluster)
    locked = one("LOCK", "/outage/doc.txt", lock_body(), Content_Type="text/xml")
    assert locked.status == 200, locked.body
    assert two("LOCK", "/outage/doc.txt", lock_body(), Content_Type="text/xml").status == 423
    assert two("UNLOCK", "/outage/doc.txt", Lock_Token=lock_token(locked)).status == 204
    for dav in clients(cluster):
        assert dav("GET", "/outage/after.txt").status == 404
    assert one("PUT", "/outage/after.txt", b"after the outage").status == 201
    for dav in clients(cluster):
        assert dav("GET", "/outage/after.txt").body == b"after the outage"


# ---- a replica killed mid-run (last: the cluster stays one short) ---------------------------


RETRIED = (502, 503, 504)  # what a client retries (rclone retries 5xx; browsers, 502/503)
AFTER_KILL = 30  # requests the survivors must answer after the kill


def test_a_replica_killed_mid_run_and_the_rest_go_on(cluster: Cluster) -> None:
    balanced = Client(cluster.share("state"), UA)
    victim = "r2"
    stop = threading.Event()
    answers: list[tuple[float, str, int]] = []  # (when the request was sent, replica, status)
    retries: list[str] = []
    written: dict[str, bytes] = {}

    def call(what: str, *args: Any, **headers: str) -> Reply:
        """One request as a client makes it: retried, at most twice, on what it retries."""
        for attempt in range(3):
            sent = time.monotonic()
            try:
                reply = balanced(*args, **headers)
            except (ConnectionError, http.client.HTTPException) as exc:
                retries.append(f"{what}: {exc!r}")
                continue
            answers.append((sent, reply.headers.get("X-Replica", ""), reply.status))
            if reply.status not in RETRIED or attempt == 2:
                return reply
            retries.append(f"{what}: {reply.status}")
        raise AssertionError(f"{what} failed three times: {retries}")

    def traffic() -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            name = f"/killed/file-{i}.txt"
            data = f"written {i}".encode()
            put = call(f"PUT {name}", "PUT", name, data)
            if put.status != 201:
                # Only a create retried after the kill: its first attempt may have landed
                # (403, 412), or died holding the name's write guard (423 until it expires).
                assert any(r.startswith(f"PUT {name}:") for r in retries), (name, put.status)
                assert put.status in (403, 412, 423), (name, put.status, put.body)
                if put.status == 423:
                    continue
            written[name] = data
            got = call(f"GET {name}", "GET", name)
            assert (got.status, got.body) == (200, data), (name, got.status)
            assert call("PROPFIND", "PROPFIND", "/killed/", Depth="1").status == 207

    assert balanced("MKCOL", "/killed/").status == 201
    failures: list[BaseException] = []

    def run() -> None:
        try:
            traffic()
        except BaseException as exc:
            failures.append(exc)
            raise

    thread = threading.Thread(target=run)
    thread.start()
    killed_at = float("inf")
    try:
        wait_for(lambda: failures or victim in {r for _, r, _ in answers},
                 "the victim to answer some of the traffic")
        cluster.replicas[victim].proc.kill()  # SIGKILL: no drain, no goodbye
        cluster.replicas[victim].proc.wait(10)
        cluster.killed.add(victim)
        killed_at = time.monotonic()
        wait_for(lambda: failures or sum(t > killed_at for t, _, _ in answers) >= AFTER_KILL,
                 "the survivors to answer after the kill", timeout=60)
    finally:
        stop.set()
        thread.join(60)
    assert not failures, failures[0]
    after = [(replica, status) for sent, replica, status in answers if sent > killed_at]
    # Sent after the kill: answered by the survivors, and never a failure a client sees.
    assert {replica for replica, _ in after} == {"r0", "r1"}, after
    assert all(status < 500 for _, status in after), after
    # Only what was in flight at the kill may have needed a client's retry.
    assert len(retries) <= 2, retries
    failed_at = [round(sent - killed_at, 3) for sent, _, status in answers if status >= 500]
    print(f"kill: {len(answers) - len(after)} answers before, {len(after)} after, "
          f"retries {retries}, failures sent at {failed_at} s from the kill")
    for name, data in written.items():
        for dav in clients(cluster):
            assert dav("GET", name).body == data, name

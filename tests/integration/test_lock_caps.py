"""A lock flood against a real ``bucketdav serve`` (issue "Hardening", locks unbounded), and
what a jailed user sees of other users' locks.

The flood that once took 170 MB and stalled the event loop: LOCKs with a 1 MB owner,
hundreds of shared locks with ``Timeout: Infinite`` on one folder, then a PROPFIND of that
folder. Now the owner is refused (400), locks past the caps per resource and per user are
refused (507), Infinite gets the timeout cap, and the PROPFIND reply stays small. A GET is
timed all along and its latency printed (not asserted: the machine is shared).

A jailed user sees everything in its own view of the share: lockroot and 423 messages name
paths as that user sees them, never the jail's key prefix.
"""

from __future__ import annotations

import base64
import http.client
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import etree

from tests.auth.support import bcrypt_hash
from tests.gatewayproc import GatewayProcess, running_gateway
from tests.webdav.davxml import D, lock_body

PASSWORD = "correct horse battery"
JAIL = "tenant-7f3a/"  # the jailed user's key prefix: it must never show to that user
OWNER_CAP = 4096  # the default --max-lock-owner
PER_RESOURCE = 8  # the default --max-locks-per-resource
TIMEOUT_CAP = 3600  # the default --max-lock-timeout
PER_USER = 40  # set below, small enough to reach quickly


class Client:
    """One keep-alive HTTP connection as one user."""

    def __init__(self, url: str, user: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
        token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        self.auth = {"Authorization": f"Basic {token}"}

    def __call__(self, method: str, path: str, body: str | bytes | None = None,
                 **headers: str) -> tuple[int, dict[str, str], bytes]:
        data = body.encode() if isinstance(body, str) else body
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        self.conn.request(method, path, body=data, headers={**self.auth, **hdrs})
        resp = self.conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()

    def close(self) -> None:
        self.conn.close()


def owner(size: int) -> str:
    """An owner element of exactly ``size`` bytes."""
    shell = "<D:owner></D:owner>"
    return f"<D:owner>{'o' * (size - len(shell))}</D:owner>"


def shared(size: int = 200) -> str:
    return lock_body("shared", owner(size))


def exclusive(text: str = "carol") -> str:
    return lock_body("exclusive", f"<D:owner><D:href>{text}</D:href></D:owner>")


def write_config(folder: Path) -> Path:
    data = folder / "data"
    for name in ("flood", "many"):
        (data / name).mkdir(parents=True)
    for i in range(20):
        (data / "flood" / f"f{i:02}.txt").write_text("x")
    for i in range(PER_USER + 2):
        (data / "many" / f"m{i:02}.txt").write_text("x")
    (data / "small.txt").write_text("small")
    (data / JAIL / "dir").mkdir(parents=True)
    (data / JAIL / "doc.txt").write_text("doc")
    (data / JAIL / "dir" / "in.txt").write_text("in")
    hashed = bcrypt_hash(PASSWORD)
    config = folder / "c.toml"
    config.write_text(
        f'[[share]]\npath = "/files/"\nsource = "{data}"\n\n'
        f'[[user]]\nname = "carol"\npassword_hash = "{hashed}"\n\n'
        f'[[user]]\nname = "dave"\npassword_hash = "{hashed}"\n\n'
        f'[[user]]\nname = "bob"\npassword_hash = "{hashed}"\n'
        f'shares = {{ files = {{ access = "read-write", jail = "{JAIL}" }} }}\n'
    )
    return config


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    with running_gateway("--config", str(write_config(tmp_path)),
                         "--max-locks-per-user", str(PER_USER)) as process:
        yield process
        output = process.output()
    assert "Traceback" not in output, output


class Timer(threading.Thread):
    """GETs a small file over its own connection until stopped, timing each."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.client = Client(url, "dave")
        self.stop = threading.Event()
        self.times: list[float] = []
        self.failures = 0

    def run(self) -> None:
        while not self.stop.is_set():
            start = time.perf_counter()
            status, _, body = self.client("GET", "/files/small.txt")
            self.times.append(time.perf_counter() - start)
            self.failures += (status, body) != (200, b"small")
            time.sleep(0.01)

    def report(self, what: str) -> str:
        self.stop.set()
        self.join(60)
        self.client.close()
        assert self.failures == 0, f"{self.failures} GETs failed"
        ms = sorted(t * 1000 for t in self.times)
        return (f"GET latency during {what}: {len(ms)} GETs, median "
                f"{statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms")


def test_a_lock_flood_is_refused_past_the_caps(gateway: GatewayProcess) -> None:
    timer = Timer(gateway.url)
    timer.start()
    try:
        flood_and_check(gateway)
    finally:
        print(timer.report("the lock flood and the PROPFINDs"))


def flood_and_check(gateway: GatewayProcess) -> None:
    carol, dave = Client(gateway.url, "carol"), Client(gateway.url, "dave")
    # A 1 MB owner: 400 naming the flag, and no lock is held afterwards.
    for _ in range(3):
        status, _, body = carol("LOCK", "/files/flood/", shared(1_000_000),
                                Depth="infinity", Timeout="Infinite")
        assert status == 400 and b"--max-lock-owner" in body, body
    status, _, body = carol("LOCK", "/files/flood/", shared(OWNER_CAP + 1), Depth="0")
    assert status == 400 and b"--max-lock-owner" in body, body

    # 200 shared, depth-infinity, Infinite locks on one folder from 8 connections: the cap
    # is granted (with the timeout cap, said in the reply), the rest refused with 507.
    def flood(_: int) -> tuple[int, dict[str, str], bytes]:
        client = Client(gateway.url, "carol")
        try:
            return client("LOCK", "/files/flood/", shared(OWNER_CAP), Depth="infinity",
                          Timeout="Infinite")
        finally:
            client.close()

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(flood, range(200)))
    granted = [r for r in replies if r[0] == 200]
    refused = [r for r in replies if r[0] != 200]
    assert len(granted) == PER_RESOURCE
    assert {r[0] for r in refused} == {507}
    assert all(b"--max-locks-per-resource" in r[2] for r in refused), refused[0][2]
    for _, headers, body in granted:
        assert headers["Timeout"] == f"Second-{TIMEOUT_CAP}"
        assert etree.fromstring(body).findtext(f".//{D}timeout") == f"Second-{TIMEOUT_CAP}"

    # Stacking more on a member is refused too: the folder's locks cover it already.
    status, _, body = carol("LOCK", "/files/flood/f00.txt", shared(OWNER_CAP), Depth="0")
    assert status == 507 and b"--max-locks-per-resource" in body, body

    # The folder's PROPFIND (allprop, Depth 1): every entry shows the 8 locks, no more.
    sizes = []
    for _ in range(5):
        status, _, body = carol("PROPFIND", "/files/flood/", Depth="1")
        assert status == 207
        sizes.append(len(body))
    entries = etree.fromstring(body).findall(f"{D}response")
    assert len(entries) == 21
    assert all(len(e.findall(f".//{D}activelock")) == PER_RESOURCE for e in entries)
    assert max(sizes) < len(entries) * PER_RESOURCE * (OWNER_CAP + 1024)
    print(f"PROPFIND Depth 1 of the flooded folder: {max(sizes)} bytes, {len(entries)} entries")

    # Per user: carol holds 8 locks; 32 more are granted, then 507 naming the flag.
    results = [carol("LOCK", f"/files/many/m{i:02}.txt", exclusive(), Depth="0")
               for i in range(PER_USER - PER_RESOURCE + 1)]
    assert [r[0] for r in results[:-1]] == [200] * (PER_USER - PER_RESOURCE)
    status, _, body = results[-1]
    assert status == 507 and b"--max-locks-per-user" in body, body
    # Another user still locks; carol does again once she released one.
    status, _, _ = dave("LOCK", f"/files/many/m{PER_USER:02}.txt", exclusive("dave"))
    assert status == 200
    token = results[0][1]["Lock-Token"]
    assert carol("UNLOCK", "/files/many/m00.txt", Lock_Token=token)[0] == 204
    assert carol("LOCK", f"/files/many/m{PER_USER + 1:02}.txt", exclusive())[0] == 200

    # Timeouts: at least what is asked up to the cap, which longer requests get.
    for asked, given in (("Second-600", 600), ("Second-3600", 3600),
                         ("Second-99999999", TIMEOUT_CAP), ("Second-" + "9" * 5000, TIMEOUT_CAP)):
        status, headers, body = dave("LOCK", "/files/small.txt", exclusive("dave"),
                                     Timeout=asked)
        assert status == 200, body
        assert headers["Timeout"] == f"Second-{given}"
        assert dave("UNLOCK", "/files/small.txt", Lock_Token=headers["Lock-Token"])[0] == 204

    carol.close()
    dave.close()


def test_a_jailed_user_sees_locks_in_its_own_view(gateway: GatewayProcess) -> None:
    carol, bob = Client(gateway.url, "carol"), Client(gateway.url, "bob")
    jail = JAIL.rstrip("/").encode()

    # carol (not jailed) locks bob's file: bob sees the lock on /files/doc.txt.
    status, headers, _ = carol("LOCK", f"/files/{JAIL}doc.txt", exclusive(), Depth="0")
    assert status == 200
    status, _, body = bob("PROPFIND", "/files/doc.txt", Depth="0")
    assert status == 207 and jail not in body, body
    assert etree.fromstring(body).findtext(f".//{D}lockroot/{D}href") == "/files/doc.txt"
    status, _, body = bob("PUT", "/files/doc.txt", b"mine")
    assert status == 423 and jail not in body and b"/files/doc.txt" in body, body
    status, _, body = bob("LOCK", "/files/doc.txt", exclusive("bob"), Depth="0")
    assert status == 423 and jail not in body, body
    assert carol("UNLOCK", f"/files/{JAIL}doc.txt", Lock_Token=headers["Lock-Token"])[0] == 204

    # A depth-infinity lock on bob's folder: its lockroot, and the 423 of a write below it.
    status, headers, _ = carol("LOCK", f"/files/{JAIL}dir/", exclusive(), Depth="infinity")
    assert status == 200
    status, _, body = bob("PROPFIND", "/files/dir/in.txt", Depth="0")
    assert status == 207 and jail not in body, body
    assert etree.fromstring(body).findtext(f".//{D}lockroot/{D}href") == "/files/dir/"
    status, _, body = bob("PUT", "/files/dir/new.txt", b"new")
    assert status == 423 and jail not in body and b"/files/dir/" in body, body
    assert carol("UNLOCK", f"/files/{JAIL}dir/", Lock_Token=headers["Lock-Token"])[0] == 204

    # A lock above the jail (the share's root) covers bob's whole view: its root is bob's.
    status, headers, _ = carol("LOCK", "/files/", exclusive(), Depth="infinity")
    assert status == 200
    status, _, body = bob("PROPFIND", "/files/doc.txt", Depth="0")
    assert status == 207 and jail not in body, body
    assert etree.fromstring(body).findtext(f".//{D}lockroot/{D}href") == "/files/"
    status, _, body = bob("PUT", "/files/new.txt", b"new")
    assert status == 423 and jail not in body, body
    assert carol("UNLOCK", "/files/", Lock_Token=headers["Lock-Token"])[0] == 204

    # bob's own lock: bob sees it in his view, carol in hers (with the jail's prefix).
    status, headers, body = bob("LOCK", "/files/doc.txt", exclusive("bob"), Depth="0")
    assert status == 200 and jail not in body, body
    assert etree.fromstring(body).findtext(f".//{D}lockroot/{D}href") == "/files/doc.txt"
    status, _, body = carol("PROPFIND", f"/files/{JAIL}doc.txt", Depth="0")
    assert etree.fromstring(body).findtext(f".//{D}lockroot/{D}href") == f"/files/{JAIL}doc.txt"
    status, _, body = carol("PUT", f"/files/{JAIL}doc.txt", b"hers")
    assert status == 423 and f"/files/{JAIL}doc.txt".encode() in body, body
    carol.close()
    bob.close()

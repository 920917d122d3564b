"""``--workers N``: real ``bucketdav serve`` parents with real worker processes on one port.

The supervision is tested with ``--state memory`` through the test-only escape
(``UNSHARED_WORKERS_FOR_TESTS``): what is checked here is processes, the port, the admin
port and the drain, not shared state; without the escape that combination is refused.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families

from gateway.ops.workers import UNSHARED_WORKERS_FOR_TESTS
from tests.apps import parse_reply
from tests.gatewayproc import Process, bucketdav, run_bucketdav
from tests.servers import run_redis

MiB = 1024 * 1024
ESCAPE = {UNSHARED_WORKERS_FOR_TESTS: "1"}


def get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    return request("GET", url, context=context)


def request(method: str, url: str, body: bytes | None = None,
            context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    """One request on a connection of its own (urllib opens one each time): the kernel
    picks a listener per connection."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, method=method),
                                    timeout=30, context=context) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def metrics(server: Process) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> labels -> value, from the parent's admin port."""
    status, body = get(server.admin + "/metrics")
    assert status == 200
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def workers_of(server: Process) -> list[psutil.Process]:
    """The worker processes (spawned interpreters) of a parent, not its other helpers."""
    return [child for child in psutil.Process(server.pid).children()
            if "spawn_main" in " ".join(child.cmdline())]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@contextmanager
def two_workers(folder: Path, *args: str) -> Iterator[Process]:
    with bucketdav(str(folder), "--workers", "2", *args, env=ESCAPE, timeout=60) as server:
        yield server


@pytest.fixture
def share(tmp_path: Path) -> Path:
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "f.txt").write_text("hello")
    return folder


def test_two_workers_answer_on_one_port_with_the_memory_target_split(share: Path) -> None:
    with two_workers(share, "--memory-target", "64") as server:
        pids = {w.pid for w in workers_of(server)}
        assert len(pids) == 2 and server.pid not in pids
        for _ in range(60):
            assert get(server.url + "/f.txt") == (200, b"hello")
        assert get(server.admin + "/livez") == (200, b"ok\n")
        assert get(server.admin + "/readyz") == (200, b"ready\n")
        found = metrics(server)
        # both workers answered (the kernel spread the connections), and the sums add up
        per_worker = found["bucketdav_worker_http_requests_total"]
        assert set(per_worker) == {(("worker", "0"),), (("worker", "1"),)}
        assert all(count > 0 for count in per_worker.values()), per_worker
        assert found["bucketdav_http_requests_total"][(("method", "GET"), ("status", "200"))] \
            == 60
        assert {int(dict(labels)["pid"]) for labels in found["bucketdav_worker_up"]} == pids
        # each worker has half of --memory-target (32 MiB), three quarters of it for
        # buffers (the rest is the process's own reserve): 24 MiB each, 48 MiB summed
        assert found["bucketdav_memory_budget_bytes"][()] == 48 * MiB
        assert found["bucketdav_workers"][()] == 2


def test_a_killed_worker_is_restarted_and_the_port_keeps_answering(share: Path) -> None:
    with two_workers(share) as server:
        victim, survivor = workers_of(server)
        victim.kill()  # SIGKILL: no drain, no goodbye
        victim.wait(10)
        for _ in range(20):  # the survivor answers while the slot restarts
            assert get(server.url + "/f.txt") == (200, b"hello")

        def replaced() -> bool:
            pids = {w.pid for w in workers_of(server)}
            return len(pids) == 2 and victim.pid not in pids
        wait_for(replaced, "a new worker")
        assert survivor.pid in {w.pid for w in workers_of(server)}
        wait_for(lambda: get(server.admin + "/readyz")[0] == 200, "readiness after the restart")
        assert metrics(server)["bucketdav_worker_restarts_total"][()] == 1
        for _ in range(20):
            assert get(server.url + "/f.txt") == (200, b"hello")


def test_sigterm_drains_an_upload_in_flight_and_leaves_no_process(share: Path) -> None:
    with two_workers(share, "--shutdown-grace", "20") as server:
        family = psutil.Process(server.pid).children(recursive=True)
        host, port = server.url.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)), timeout=30)
        sock.sendall(b"PUT /up.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"u" * MiB
        sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        server.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "shutting down (in-flight" in server.output(), "the workers' drain")
        assert get(server.admin + "/readyz")[0] == 503  # draining: not ready
        sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n")
        data = b""
        while part := sock.recv(65536):
            data += part
        sock.close()
        assert parse_reply(data).status == 201
        assert server.proc.wait(60) == 0
        assert (share / "up.bin").stat().st_size == 2 * MiB
        _, alive = psutil.wait_procs(family, timeout=10)
        assert not alive, f"left running: {alive}"


def test_a_sigint_stops_every_worker_too(share: Path) -> None:
    with two_workers(share) as server:
        family = psutil.Process(server.pid).children(recursive=True)
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(60) == 0
        _, alive = psutil.wait_procs(family, timeout=10)
        assert not alive


def test_workers_do_not_outlive_a_parent_killed_outright(share: Path) -> None:
    with two_workers(share) as server:
        workers = workers_of(server)
        server.proc.kill()  # SIGKILL: the parent cannot pass anything on
        server.proc.wait(10)
        _, alive = psutil.wait_procs(workers, timeout=30)  # each drains and exits itself
        assert not alive


def test_workers_that_keep_dying_together_make_the_parent_give_up(share: Path) -> None:
    with two_workers(share) as server:
        killed: set[int] = set()
        while server.proc.poll() is None:  # 3 * N deaths within a minute: it gives up
            current = [w for w in workers_of(server) if w.pid not in killed]
            for worker in current:
                killed.add(worker.pid)
                worker.kill()
            time.sleep(0.2)
            assert len(killed) <= 8, "the parent keeps restarting workers that all die"
        assert server.proc.wait(30) == 1
        assert "giving up: 6 worker deaths" in server.output()  # the promised line


def test_several_workers_with_state_in_memory_are_refused(share: Path) -> None:
    result = run_bucketdav(str(share), "--workers", "2", "--port", "0", "--no-admin")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--workers 2 needs a shared --state" in lines[0]
    assert result.stdout == ""


def test_a_worker_that_cannot_start_stops_the_whole_with_status_2(
    share: Path, tmp_path: Path
) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", str(share), "--workers", "2", "--port", "0",
         "--no-admin", "--tls-cert", str(tmp_path / "bad.pem"), "--tls-key",
         str(tmp_path / "bad.pem")],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ, **ESCAPE},
    )
    assert result.returncode == 2
    assert result.stderr.count("cannot use --tls-cert") == 1  # said once, by the first worker
    assert result.stdout == ""


def test_two_workers_behind_tls(share: Path, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with two_workers(share, "--tls-cert", str(cert_path), "--tls-key", str(key_path)) as server:
        assert server.url.startswith("https://")
        for _ in range(30):
            assert get(server.url + "/f.txt", context) == (200, b"hello")
        per_worker = metrics(server)["bucketdav_worker_http_requests_total"]
        assert all(count > 0 for count in per_worker.values()), per_worker


def test_two_workers_start_on_a_redis_state_store_without_any_escape(
    share: Path, tmp_path: Path
) -> None:
    """With a shared state store, several workers are what the user asked for."""
    with run_redis(tmp_path) as redis, bucketdav(
        str(share), "--workers", "2", "--state", redis.url, timeout=60
    ) as server:
        for i in range(20):  # fresh connections: both workers are asked
            assert request("PUT", server.url + f"/new-{i}.txt", b"x")[0] == 201
            assert get(server.url + f"/new-{i}.txt") == (200, b"x")
        assert get(server.admin + "/readyz") == (200, b"ready\n")
        per_worker = metrics(server)["bucketdav_worker_http_requests_total"]
        assert len(per_worker) == 2 and all(n > 0 for n in per_worker.values()), per_worker

"""A cluster of real parts for tests/compat/test_cluster.py: one real ``redis-server``,
several ``bucketdav serve --state redis://...`` replicas over moto, and a real HAProxy in
front of them, round robin with no affinity, all on 127.0.0.1 and free ports.

Each replica serves the same shares (one bucket each, from one TOML file), so every test
gets an empty bucket of its own without restarting anything. Which replica answered a
request is known twice over: HAProxy names the server it chose in ``X-Replica`` on every
reply, and each replica's own ``/metrics`` counts the requests it answered
(``Cluster.answered``), which is how a test proves the spread from the replicas' side.
HAProxy sends a request to the replicas whose admin ``/readyz`` says ready and, when none
is (the state store down), to any live one, as deploy/haproxy.cfg does; a server that
refuses a connection is retried on another, so a killed replica costs at most the
requests it was answering.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from prometheus_client.parser import text_string_to_metric_families

from tests.compat.test_replays import Bucket, Client, Reply
from tests.gatewayproc import Process, bucketdav
from tests.servers import RedisServer, create_bucket, free_port
from tests.webdav.davxml import D, multistatus, propfind_body

LONG_TTL = 3600.0  # --metadata-ttl: nothing becomes visible by expiring during a test
CHECK_INTERVAL = "300ms"  # HAProxy health checks: a dead or unready replica is out in ~1 s


def get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """A plain GET on a connection of its own."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition()`` until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def samples(admin: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric on an admin port: labels -> value."""
    status, body = get(admin + "/metrics")
    assert status == 200, body
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def answered(process: Process) -> int:
    """Requests one gateway process (all its workers) has answered on its main port."""
    return int(sum(samples(process.admin, "bucketdav_http_requests_total").values()))


def spread(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Requests each replica answered in between; every one must have answered some."""
    delta = {name: after[name] - before[name] for name in after}
    assert all(count > 0 for count in delta.values()), f"not every replica answered: {delta}"
    return delta


def fetch(url: str, name: str) -> tuple[int, bytes]:
    """GET ``name`` (a path, percent-encoded here) under ``url``."""
    return get(url + "/" + "/".join(quote(p, safe="") for p in name.split("/")))


def readyz(process: Process) -> tuple[int, bytes]:
    return get(process.admin + "/readyz")


def is_ready(process: Process, ready: bool) -> bool:
    return (readyz(process)[0] == 200) == ready


def share_table(path: str, bucket: str, keys: Mapping[str, bool | str]) -> str:
    """A ``[[share]]`` table: ``/path/`` serving the whole bucket, with more keys (policy,
    or a store of its own)."""
    lines = ["[[share]]", f'path = "/{path}/"', f'source = "s3://{bucket}/"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def replica(reply: Reply) -> str:
    """The HAProxy server that answered, from the header the balancer adds."""
    name = reply.headers["X-Replica"]
    assert name, "the balancer names the replica that answered"
    return str(name)


def lockdiscovery(dav: Client, path: str) -> list[tuple[str | None, str | None]]:
    """(token, lockroot) of each lock a PROPFIND of ``path`` reports."""
    found = dav("PROPFIND", path, propfind_body(f"{D}lockdiscovery"), Depth="0",
                Content_Type="text/xml")
    assert found.status == 207, found.body
    [answer] = multistatus(found.body).values()
    prop = answer.ok()[f"{D}lockdiscovery"]
    return [(lock.findtext(f"{D}locktoken/{D}href"), lock.findtext(f"{D}lockroot/{D}href"))
            for lock in prop.findall(f"{D}activelock")]


def names_in(dav: Client, path: str) -> set[str]:
    """The last path component of every href a PROPFIND Depth 1 of ``path`` answers."""
    found = dav("PROPFIND", path, Depth="1")
    assert found.status == 207, found.body
    return {href.rstrip("/").rsplit("/", 1)[-1] for href in multistatus(found.body)}


# ---- HAProxy ------------------------------------------------------------------------------


def haproxy_config(port: int, replicas: list[tuple[str, Process]]) -> str:
    """Round robin, no affinity, a new server connection per request (so consecutive
    requests of one client connection really change replica), checks on the admin port."""

    def servers(prefix: str) -> str:
        return "".join(
            f"    server {prefix}{name} {proc.url.removeprefix('http://')} check port "
            f"{proc.admin.rsplit(':', 1)[1]}\n"
            for name, proc in replicas
        )

    return f"""global
    maxconn 1024

defaults
    mode http
    option http-server-close
    option redispatch 1
    retries 3
    timeout connect 2s
    timeout http-request 30s
    timeout queue 30s
    timeout client 5m
    timeout server 10m

frontend webdav
    bind 127.0.0.1:{port}
    use_backend live if {{ nbsrv(ready) eq 0 }}
    default_backend ready

backend ready
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
    http-response set-header X-Replica %s
    default-server inter {CHECK_INTERVAL} fall 2 rise 2
{servers("")}
backend live
    balance roundrobin
    option httpchk
    http-check send meth GET uri /livez
    http-check expect status 200
    http-response set-header X-Replica %s
    default-server inter 1s fall 2 rise 2
{servers("live-")}"""


@contextmanager
def run_haproxy(directory: Path, replicas: list[tuple[str, Process]]) -> Iterator[str]:
    """``haproxy -db`` in front of ``replicas`` on a free port; yields its URL once every
    replica has answered through it."""
    config = directory / "haproxy.cfg"
    for _ in range(5):  # another process may take the free port before HAProxy binds it
        port = free_port()
        config.write_text(haproxy_config(port, replicas), "utf-8")
        with open(directory / "haproxy.log", "ab") as log:
            proc = subprocess.Popen(["haproxy", "-f", str(config), "-db"],
                                    stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            seen: set[str] = set()

            def all_answer(url: str = url, seen: set[str] = seen,
                           proc: subprocess.Popen[bytes] = proc) -> bool:
                assert proc.poll() is None, (directory / "haproxy.log").read_text()
                try:
                    with urllib.request.urlopen(url + "/", timeout=5) as resp:
                        seen.add(resp.headers.get("X-Replica", ""))
                except OSError:
                    return False
                return seen >= {name for name, _ in replicas}

            try:
                wait_for(all_answer, "HAProxy and every replica behind it", timeout=20)
            except AssertionError:
                if proc.poll() is None:
                    raise
                continue  # exited: most likely the port was taken
            yield url
            return
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    raise RuntimeError(f"haproxy did not start; see {directory / 'haproxy.log'}")


# ---- the cluster ----------------------------------------------------------------------------


@dataclass
class Cluster:
    redis: RedisServer
    endpoint: str  # the S3 endpoint (moto) of every share without one of its own
    buckets: dict[str, str]  # share name -> bucket
    endpoints: dict[str, str]  # share name -> its S3 endpoint
    replicas: dict[str, Process]  # HAProxy's server name -> process
    url: str = ""  # the balancer
    killed: set[str] = field(default_factory=set)

    def share(self, name: str, replica: str | None = None) -> str:
        """The URL of a share through the balancer, or through one replica directly."""
        base = self.url if replica is None else self.replicas[replica].url
        return f"{base}/{name}"

    def bucket(self, share: str) -> Bucket:
        """The bucket of a share, to read with a plain S3 client."""
        return Bucket(self.endpoints[share], self.buckets[share])

    def live(self) -> list[str]:
        return [name for name in self.replicas if name not in self.killed]

    def answered(self) -> dict[str, int]:
        """Requests each live replica has answered so far."""
        return {name: answered(self.replicas[name]) for name in self.live()}


@contextmanager
def run_cluster(directory: Path, redis: RedisServer, endpoint: str,
                shares: Mapping[str, Mapping[str, bool | str]], count: int = 3
                ) -> Iterator[Cluster]:
    """``count`` replicas serving ``shares`` (name -> TOML keys of the share), sharing
    ``redis``, behind HAProxy; all stopped at the end. A share is a new bucket of
    ``endpoint``, or the ``bucket`` its keys name on their ``endpoint_url``."""
    buckets, endpoints, tables = {}, {}, []
    for name, given in shares.items():
        keys = dict(given)
        bucket = keys.pop("bucket", None)
        buckets[name] = str(bucket) if bucket else create_bucket(endpoint, prefix="cluster")
        endpoints[name] = str(keys.get("endpoint_url", endpoint))
        tables.append(share_table(name, buckets[name], keys))
    config = directory / "shares.toml"
    # Top-level keys are every share's defaults (a flag would override the shares' own).
    config.write_text(f"endpoint_url = {json.dumps(endpoint)}\nforce_path_style = true\n\n"
                      + "\n".join(tables), "utf-8")
    args = ("--config", str(config), "--state", redis.url, "--metadata-ttl", str(LONG_TTL),
            "--trusted-proxy", "127.0.0.1")
    with ExitStack() as stack:
        replicas = {f"r{i}": stack.enter_context(bucketdav(*args, timeout=60))
                    for i in range(count)}
        cluster = Cluster(redis, endpoint, buckets, endpoints, replicas)
        cluster.url = stack.enter_context(run_haproxy(directory, list(replicas.items())))
        yield cluster

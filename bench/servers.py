"""The processes a benchmark run starts: s3rver, the shaping proxy, bucketdav and rclone.

Each runs in a process group of its own, bound to 127.0.0.1 on a free port, and is stopped by
whoever started it (``Service.stop`` terminates the whole group, then kills what is left).
``RssSampler`` follows the peak resident memory of one server's process tree.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

ROOT = Path(__file__).resolve().parent.parent
S3RVER_KEY = "S3RVER"  # the one access key s3rver knows; it does not check v4 signatures
RCLONE_REMOTE = "BENCHS3"  # rclone remote configured through RCLONE_CONFIG_BENCHS3_* only


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    """A started server process (and its children) and where it listens."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                last = (self.log_tail(1) or "no output").strip()
                raise RuntimeError(
                    f"{self.name} exited with status {self.proc.returncode} ({last})"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(
                        f"{self.name} did not listen on {self.port} in {timeout:.0f}s:\n"
                        + self.log_tail()
                    ) from None
                time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        """Terminate the process group; kill it if it has not ended within ``grace`` s."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Children that outlived their parent in the same group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the benchmark process dies, even by SIGKILL
    (Linux PR_SET_PDEATHSIG), so that no server outlives a benchmark that was killed."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _spawn(
    name: str, argv: list[str], env: dict[str, str], logdir: Path, port: int
) -> Service:
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{name}-{port}.log"
    log_file = open(log, "wb")  # noqa: SIM115 - closed by Service.stop
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
        start_new_session=True,  # its own process group: stop() ends it and its children
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    return Service(name, proc, port, log, log_file)


def _clean_env() -> dict[str, str]:
    """The environment minus anything that could point a server at a real account."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


# ---- s3rver ----------------------------------------------------------------------------------


def s3rver_binary() -> str:
    local = ROOT / ".tools" / "node_modules" / ".bin" / "s3rver"
    if local.exists():
        return str(local)
    found = shutil.which("s3rver")
    if found is None:
        raise RuntimeError(
            "s3rver is not installed: scripts/install-test-deps and bench/run install it "
            "(npm s3rver@3 in .tools)"
        )
    return found


def start_s3rver(
    directory: Path, logdir: Path, env: dict[str, str] | None = None, attempts: int = 5
) -> Service:
    """s3rver storing under ``directory`` on a free port of 127.0.0.1, ready to answer.

    The one s3rver launcher of the benchmark and the tests. The port is picked before s3rver
    binds it, so another process (a parallel test worker) may take it in between: s3rver then
    exits with EADDRINUSE, or the port answers for someone else. Readiness is therefore this
    process listening on the port, and a lost port is retried on a new one. ``env`` defaults
    to the environment without AWS or rclone settings.
    """
    env = dict(_clean_env() if env is None else env)
    # s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (Node >= 17)
    # only offers in its legacy provider: without it every truncated listing is a 500.
    env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " --openssl-legacy-provider").strip()
    for attempt in range(1, attempts + 1):
        port = free_port()
        argv = [s3rver_binary(), "--directory", str(directory), "--address", "127.0.0.1",
                "--port", str(port), "--silent", "--no-vhost-buckets"]
        service = _spawn("s3rver", argv, env, logdir, port)
        if _wait_listening(service):
            return service
        lost = "EADDRINUSE" in service.log_tail()
        service.stop()
        if not lost or attempt == attempts:
            raise RuntimeError(f"s3rver did not start on 127.0.0.1:{port}:\n{service.log_tail()}")
        # the port was taken between the pick and the bind: try another one
    raise AssertionError("unreachable")


def _wait_listening(service: Service, timeout: float = 30.0) -> bool:
    """Whether ``service``'s own process listens on its port within ``timeout``; False as
    soon as it exits (it lost the port, or failed otherwise: its log says)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listens(service.proc.pid, service.port):
            return True
        if service.proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` or a child of it has a listening TCP socket on ``port``."""
    return _listeners(pid, port) > 0


def _listeners(pid: int, port: int) -> int:
    """How many of process ``pid`` and its descendants listen on TCP ``port`` (workers that
    share a port with SO_REUSEPORT each have a listening socket of their own)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0
    found = 0
    for proc in procs:
        try:
            found += any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                         for c in proc.net_connections(kind="tcp"))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


# ---- the shaping proxy -----------------------------------------------------------------------


@dataclass
class Proxy:
    service: Service
    control_port: int

    @property
    def url(self) -> str:
        return self.service.url

    def stats(self) -> dict[str, int]:
        url = f"http://127.0.0.1:{self.control_port}/stats"
        with urllib.request.urlopen(url, timeout=10) as resp:
            data: dict[str, int] = json.load(resp)
        return data


def start_proxy(backend: str, bandwidth_mb: float, latency_ms: float, logdir: Path) -> Proxy:
    port, control = free_port(), free_port()
    argv = [sys.executable, "-m", "bench.proxy", "--backend", backend, "--port", str(port),
            "--control-port", str(control), "--bandwidth", str(bandwidth_mb),
            "--latency", str(latency_ms)]
    service = _spawn("proxy", argv, _clean_env(), logdir, port)
    service.wait_ready()
    proxy = Proxy(service, control)
    deadline = time.monotonic() + 10
    while True:  # the control port opens right after the proxy port
        try:
            proxy.stats()
            return proxy
        except OSError:
            if time.monotonic() > deadline:
                service.stop()
                raise
            time.sleep(0.05)


# ---- the contenders --------------------------------------------------------------------------


def start_bucketdav(
    source: str,
    endpoint: str | None,
    memory_target_mib: int,
    extra: list[str],
    logdir: Path,
    env_extra: dict[str, str] | None = None,
    workers: int = 1,
) -> Service:
    """``bucketdav serve SOURCE``: an s3:// bucket at ``endpoint``, or a local folder
    (``endpoint`` None). With ``workers`` > 1, ready when every worker listens: a worker still
    starting would spend its start-up CPU inside the measurement."""
    port = free_port()
    env = _clean_env()
    env.update(
        AWS_ACCESS_KEY_ID=S3RVER_KEY,
        AWS_SECRET_ACCESS_KEY=S3RVER_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    env = {k: v for k, v in env.items() if not k.startswith("BUCKETDAV_")}
    env.update(env_extra or {})
    store = ([] if endpoint is None else
             ["--endpoint-url", endpoint, "--force-path-style", "--region", "us-east-1"])
    argv = [sys.executable, "-m", "gateway", "serve", source, *store, "--host", "127.0.0.1",
            "--port", str(port), "--memory-target", str(memory_target_mib),
            "--log-level", "warning", *extra]
    if workers > 1:
        argv += ["--workers", str(workers)]
    service = _spawn("bucketdav", argv, env, logdir, port)
    service.wait_ready()
    deadline = time.monotonic() + 60
    while _listeners(service.proc.pid, port) < workers:
        if time.monotonic() > deadline or service.proc.poll() is not None:
            service.stop()
            raise RuntimeError(f"bucketdav: fewer than {workers} workers listen on {port}:\n"
                               + service.log_tail())
        time.sleep(0.05)
    return service


def bucketdav_offers(flag: str) -> bool:
    """Whether ``bucketdav serve`` has the option ``flag`` (its --help lists it)."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "gateway", "serve", "--help"], capture_output=True,
            text=True, timeout=60, check=False, cwd=ROOT, env=_clean_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(word.rstrip(",") == flag for word in out.stdout.split())


# ---- redis (shared state for several workers) --------------------------------------------------


def start_redis(directory: Path, logdir: Path, attempts: int = 5) -> Service | None:
    """A ``redis-server`` on a free port of 127.0.0.1, persistence off; None if there is no
    redis-server on this machine."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):  # another process may take the free port first
        port = free_port()
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(directory)]
        service = _spawn("redis", argv, _clean_env(), logdir, port)
        if _wait_listening(service, timeout=10):
            return service
        service.stop()
    raise RuntimeError(f"redis-server did not start:\n{service.log_tail()}")


# What a fair user would pass to serve a bucket for reading: --vfs-cache-mode off is rclone's
# default (reads stream from S3, nothing is cached on disk); --use-server-modtime takes the
# S3 LastModified instead of the mtime rclone keeps in object metadata, which would cost one
# HEAD per object in every folder listing (27 s for 1,000 objects here).
RCLONE_FLAGS = ["--vfs-cache-mode", "off", "--use-server-modtime"]


def rclone_binary() -> str | None:
    return shutil.which("rclone")


def start_rclone(endpoint: str, bucket: str, extra: list[str], logdir: Path) -> Service:
    binary = rclone_binary()
    if binary is None:
        raise RuntimeError("rclone is not installed")
    port = free_port()
    env = _clean_env()  # also drops AWS_CA_BUNDLE: rclone 1.60 fails when it is set
    prefix = f"RCLONE_CONFIG_{RCLONE_REMOTE}_"
    env.update(
        {
            prefix + "TYPE": "s3",
            prefix + "PROVIDER": "Other",
            prefix + "ENDPOINT": endpoint,
            prefix + "ACCESS_KEY_ID": S3RVER_KEY,
            prefix + "SECRET_ACCESS_KEY": S3RVER_KEY,
            prefix + "REGION": "us-east-1",
            prefix + "FORCE_PATH_STYLE": "true",
            "RCLONE_CONFIG": str(logdir / "rclone-empty.conf"),
        }
    )
    (logdir / "rclone-empty.conf").write_text("", "utf-8")
    argv = [binary, "serve", "webdav", f"{RCLONE_REMOTE}:{bucket}", "--addr",
            f"127.0.0.1:{port}", *RCLONE_FLAGS, *extra]
    service = _spawn("rclone", argv, env, logdir, port)
    service.wait_ready()
    return service


# ---- memory ----------------------------------------------------------------------------------


class RssSampler:
    """Samples the resident memory of a process and its descendants every ``interval`` s, in a
    thread (so that a busy event loop does not skip samples). ``peak`` is the largest sum seen
    since the last ``reset``."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._root = psutil.Process(pid)
        self._interval = interval
        self._peak = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> int:
        total = 0
        try:
            procs = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._sample()
            with self._lock:
                self._peak = max(self._peak, rss)
            self._stop.wait(self._interval)

    def reset(self) -> None:
        with self._lock:
            self._peak = self._sample()

    @property
    def peak(self) -> int:
        with self._lock:
            return max(self._peak, self._sample())

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# ---- CPU ---------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants so far (children it has
    already reaped included)."""
    return sum(cpu_by_process(pid).values())


def cpu_by_process(pid: int) -> dict[int, float]:
    """User + system CPU seconds so far of a process and of each of its descendants; the
    process's own count includes the children it has already reaped."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return {}
    found = {}
    for i, proc in enumerate(procs):
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        found[proc.pid] = t.user + t.system
        if i == 0:
            found[proc.pid] += t.children_user + t.children_system
    return found


# ---- versions, for the report ----------------------------------------------------------------


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def versions() -> dict[str, str]:
    from gateway import __version__

    rclone = rclone_binary()
    try:
        s3rver = _first_line([s3rver_binary(), "--version"])
    except RuntimeError:
        s3rver = "not installed"
    return {
        "bucketdav": __version__,
        "rclone": _first_line([rclone, "version"]) if rclone else "not installed",
        "s3rver": s3rver,
        "node": _first_line(["node", "--version"]),
        "python": sys.version.split()[0],
    }

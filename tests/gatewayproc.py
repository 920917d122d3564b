"""Real ``bucketdav serve`` processes for end-to-end, client and operations tests.

``bucketdav(*args)`` runs ``python -m gateway serve ARGS`` on free ports (the main one and
the admin one) and reads the URLs the process prints; ``running_gateway`` is the same
without the admin port unless asked for; ``run_bucketdav`` runs one expected to refuse to
start. Every process is stopped when its block ends.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_SERVING = re.compile(r"serving .* at (https?://\S+?)/?$")
_ADMIN = re.compile(r"admin endpoints .* at (http://\S+?)/?$")


@dataclass
class Process:
    proc: subprocess.Popen[str]
    url: str = ""
    admin: str = ""  # "-" when the admin port could not be opened
    lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@contextmanager
def bucketdav(*args: str, env: dict[str, str] | None = None, timeout: float = 30.0
              ) -> Iterator[Process]:
    """``python -m gateway serve ARGS --port 0 --admin-port 0`` until the block ends."""
    cmd = [sys.executable, "-m", "gateway", "serve", *args]
    if "--port" not in args:
        cmd += ["--port", "0"]
    if "--admin-port" not in args and "--no-admin" not in args:
        cmd += ["--admin-port", "0"]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=full_env)
    process = Process(proc)
    started = threading.Event()
    wants_admin = "--no-admin" not in args

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            process.lines.append(line)
            if m := _SERVING.search(line.strip()):
                process.url = m.group(1)
            if m := _ADMIN.search(line.strip()):
                process.admin = m.group(1)
            if "no admin endpoints" in line:
                process.admin = "-"  # reported as unavailable: do not wait for it
            if process.url and (process.admin or not wants_admin):
                started.set()
        started.set()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        if not started.wait(timeout) or not process.url:
            proc.kill()
            proc.wait()
            thread.join(5)
            raise RuntimeError("bucketdav did not start:\n" + process.output())
        yield process
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        thread.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


def run_bucketdav(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run a ``bucketdav serve`` that is expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", "serve", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


GatewayProcess = Process


@contextmanager
def running_gateway(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> Iterator[GatewayProcess]:
    """``bucketdav(*args)`` without the admin port unless ``args`` ask for it."""
    admin = () if "--admin-port" in args or "--no-admin" in args else ("--no-admin",)
    with bucketdav(*args, *admin, env=env, timeout=timeout) as process:
        yield process

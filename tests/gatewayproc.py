"""Start a real ``bucketdav serve`` process for end-to-end and client tests.

The process binds 127.0.0.1 on a free port (``--port 0``); its first stdout line says
where. Whoever starts it stops it: use ``running_gateway`` as a context manager.
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

_READY = re.compile(r"serving .* at (http://127\.0\.0\.1:\d+)/")


@dataclass
class GatewayProcess:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    proc: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return "".join(self.output)


@contextmanager
def running_gateway(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> Iterator[GatewayProcess]:
    """Run ``python -m gateway serve *args --port 0`` until the block ends."""
    cmd = [sys.executable, "-m", "gateway", "serve", *args]
    if "--port" not in args:
        cmd += ["--port", "0"]
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
    )
    assert proc.stdout is not None
    output: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            m = _READY.search(line)
            if m and not found.is_set():
                url.append(m.group(1))
                found.set()
        found.set()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        if not found.wait(timeout) or not url:
            proc.kill()
            proc.wait()
            raise RuntimeError("bucketdav did not start:\n" + "".join(output))
        yield GatewayProcess(url[0], proc, output)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        thread.join(timeout=5)
        proc.stdout.close()

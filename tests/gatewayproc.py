"""Start a real ``bucketdav serve`` process for end-to-end and client tests.

A thin front of ``tests.opsapp.bucketdav`` (one way to start the process): the gateway
binds 127.0.0.1 on a free port, without the admin port unless asked for, and is stopped
when the block ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.opsapp import Process, bucketdav

GatewayProcess = Process


@contextmanager
def running_gateway(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> Iterator[GatewayProcess]:
    """Run ``python -m gateway serve *args --port 0`` until the block ends."""
    admin = () if "--admin-port" in args or "--no-admin" in args else ("--no-admin",)
    with bucketdav(*args, *admin, env=env, timeout=timeout) as process:
        yield process

"""Real clients against a real ``bucketdav serve`` process over moto.

Each client test gets a fresh bucket and its own gateway process, started with the
semantics flags the test names, and stopped when the test ends.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.gatewayproc import GatewayProcess, running_gateway
from tests.servers import create_bucket

PERMISSIVE = ("--allow-overwrite", "--allow-delete", "--allow-rename")

StartGateway = Callable[..., GatewayProcess]


def require_tool(name: str) -> str:
    """The path of a client binary; a missing one fails the test (scripts/test installs
    them), it is never skipped."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/install-test-deps")
    return path


@pytest.fixture
def moto_gateway(moto_server: str) -> Iterator[StartGateway]:
    """``start(*flags) -> GatewayProcess`` serving a fresh moto bucket with those flags."""
    with ExitStack() as stack:

        def start(*flags: str) -> GatewayProcess:
            bucket = create_bucket(moto_server)
            return stack.enter_context(
                running_gateway(f"s3://{bucket}", "--endpoint-url", moto_server, *flags)
            )

        yield start

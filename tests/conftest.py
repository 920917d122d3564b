"""Shared fixtures: real S3-compatible servers (moto, s3rver) and fresh buckets on them.

Importing this module points the AWS credential chain at fake keys for the whole test
session (see ``tests.servers.isolate_aws_env``), before any client is created; tests
never see the developer's real credentials. The helpers live in ``tests/servers.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import (
    S3RVER_PROFILE,
    create_bucket,
    isolate_aws_env,
    run_moto,
    run_s3rver,
)

isolate_aws_env()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Endpoint URL of a moto S3 server (a thread of this process), for the session."""
    with run_moto() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def s3rver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Endpoint URL of an s3rver process, for the session. Fails if s3rver is missing.

    Reach it with the ``s3rver`` profile: ``tests.servers.s3rver_settings(endpoint)``.
    """
    directory: Path = tmp_path_factory.mktemp("s3rver")
    with run_s3rver(directory) as endpoint:
        yield endpoint


@pytest.fixture
def moto_bucket(moto_server: str) -> tuple[str, str]:
    """``(endpoint, bucket)``: a new empty bucket on moto."""
    return moto_server, create_bucket(moto_server)


@pytest.fixture
def s3rver_bucket(s3rver: str) -> tuple[str, str]:
    """``(endpoint, bucket)``: a new empty bucket on s3rver (profile ``s3rver``)."""
    return s3rver, create_bucket(s3rver, profile=S3RVER_PROFILE)

"""Shared fixtures: real S3-compatible servers (moto, s3rver) and fresh buckets on them.

Importing this module points the AWS credential chain at fake keys for the whole test
session (see ``tests.servers.isolate_aws_env``), before any client is created; tests
never see the developer's real credentials. The helpers live in ``tests/servers.py``.

``scripts/test`` runs the suite on one pytest-xdist worker per core. Each worker is a
session of its own (its own moto and s3rver); tests that share a module-scoped fixture
(a real gateway process, a team of users, a pair of servers) are kept on one worker, in
file order, so that fixture starts once; and workers start the modules of long tests
first (see ``pytest_collection_modifyitems``).
"""

from __future__ import annotations

import os
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

# pytester: tests/test_xdist_groups.py checks the grouping below on a module of its own.
pytest_plugins = ["pytester"]

SHARED_SCOPES = frozenset({"package", "module", "class"})
REAL_PROCESSES = ("tests/compat/", "tests/integration/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    group_shared_fixtures(items)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        longest_first(items)


def group_shared_fixtures(items: list[pytest.Item]) -> None:
    """Mark every test that uses a fixture shared by several tests (module, class or package
    scope) with ``xdist_group``, named by its module and that fixture's parameter if it has
    one: ``--dist loadgroup`` runs each group on one worker, in order, so the fixture starts
    once per group as it would serially."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)  # pytest's resolved fixtures of the test
        if info is None or item.get_closest_marker("xdist_group"):
            continue
        shared = sorted(
            name for name, defs in info.name2fixturedefs.items()
            if defs and defs[-1].scope in SHARED_SCOPES
        )
        if not shared:
            continue
        params = getattr(item, "callspec", None)
        values = [str(params.params[n]) for n in shared if params and n in params.params]
        module = item.nodeid.split("::", 1)[0]
        group = f"{module}[{'-'.join(values)}]" if values else module
        item.add_marker(pytest.mark.xdist_group(group))


def longest_first(items: list[pytest.Item]) -> None:
    """On xdist workers, start the modules of long tests first (those with a ``slow`` test,
    then real processes and clients) so the short ones fill the gaps at the end instead of
    a 2 GiB upload starting last. Whole modules move, so module fixtures stay contiguous."""
    slow = {item.nodeid.split("::", 1)[0] for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::", 1)[0]
        if module in slow:
            return 0
        return 1 if module.startswith(REAL_PROCESSES) else 2

    items.sort(key=rank)  # stable: the order inside each rank is the collection's


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

"""The version methods of a store that keeps one version of each key (a local folder):
every one is refused with NotSupported (501), naming why."""

from __future__ import annotations

from gateway.errors import NotSupported
from gateway.storage.base import GetResult, ObjectInfo, VersionPage


class NoVersions:
    """Mixed into such a store; ``no_versions`` is the refusal its clients read."""

    no_versions = "this store keeps no object versions (versions need a versioned S3 bucket)"

    async def head_version(self, key: str, version_id: str) -> ObjectInfo:
        raise NotSupported(self.no_versions)

    async def get_version(
        self,
        key: str,
        version_id: str,
        start: int | None = None,
        end: int | None = None,
        if_match: str | None = None,
    ) -> GetResult:
        raise NotSupported(self.no_versions)

    async def list_versions(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> VersionPage:
        raise NotSupported(self.no_versions)

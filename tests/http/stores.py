"""Memory stores that fail part way through a listing, for the streamed listings of both
front-ends (HTML/JSON here, PROPFIND in tests/webdav)."""

from __future__ import annotations

from gateway.errors import Unavailable
from gateway.storage.base import ListPage
from tests.memorystore import MemoryStore


class FailsAfterFirstPage(MemoryStore):
    """Answers the first page of a listing, then the store goes away."""

    async def list_page(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        if token is not None:
            raise Unavailable("the store went away")
        return await super().list_page(prefix, delimiter, token, max_keys)

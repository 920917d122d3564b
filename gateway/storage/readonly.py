"""The write methods of a store that takes no writes (the virtual list of shares, a bucket
as it was at ``as_of``): every one is refused with NotPermitted (403) naming why; no upload
is ever started, so there is none to abort or list."""

from __future__ import annotations

from gateway.errors import NotPermitted
from gateway.storage.base import ObjectInfo, UploadPart


class RefusedWrites:
    """Mixed into such a store; ``refusal`` is the message its clients read."""

    @property
    def refusal(self) -> str:
        return "this store takes no writes"

    async def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        if_none_match: bool = False,
        mtime: float | None = None,
    ) -> ObjectInfo:
        raise NotPermitted(self.refusal)

    async def create_upload(
        self, key: str, content_type: str | None = None, mtime: float | None = None
    ) -> str:
        raise NotPermitted(self.refusal)

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> UploadPart:
        raise NotPermitted(self.refusal)

    async def complete_upload(
        self, key: str, upload_id: str, parts: list[UploadPart], if_none_match: bool = False
    ) -> ObjectInfo:
        raise NotPermitted(self.refusal)

    async def abort_upload(self, key: str, upload_id: str) -> None:
        return None  # none was started here

    async def list_uploads(self, prefix: str) -> list[tuple[str, str]]:
        return []

    async def copy(self, src: str, dst: str, if_none_match: bool = False) -> ObjectInfo:
        raise NotPermitted(self.refusal)

    async def delete(self, key: str) -> None:
        raise NotPermitted(self.refusal)

    async def delete_many(self, keys: list[str]) -> dict[str, str]:
        raise NotPermitted(self.refusal)

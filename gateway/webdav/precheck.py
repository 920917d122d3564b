"""What a write method checks before it writes: the share's policy, and the file now at
the target."""

from __future__ import annotations

from gateway.errors import NotFound, NotPermitted
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.storage.base import ObjectInfo


def refuse(reason: str | None) -> None:
    """Raise the policy's refusal (403, naming the flag), if there is one."""
    if reason is not None:
        raise NotPermitted(reason)


async def current_file(share: Share, path: DavPath) -> ObjectInfo | None:
    """The file now at ``path`` (noise area or store), or None."""
    if share.is_noise(path):
        held = await share.noise_file(path)
        return held.info if held is not None else None
    try:
        return await share.file_info(path)
    except NotFound:
        return None

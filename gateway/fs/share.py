"""A share: one source served at one mount point, with its policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from gateway.engine import StoreView
from gateway.errors import NotFound
from gateway.fs.listing import Entry, list_dir
from gateway.fs.noise import NoiseArea, NoiseFile, is_client_noise
from gateway.fs.paths import DavPath
from gateway.settings import Policy, ShareSettings


@dataclass
class Share:
    settings: ShareSettings
    view: StoreView
    noise: NoiseArea = field(default_factory=NoiseArea)  # client noise kept out of the store

    @property
    def mount(self) -> str:
        return self.settings.mount

    @property
    def mount_parts(self) -> tuple[str, ...]:
        return tuple(p for p in self.settings.mount.split("/") if p)

    @property
    def prefix(self) -> str:
        # "" for a plain folder source; a jail (gateway.fs.mounts.jailed) sets it for any scheme
        return self.settings.source.prefix

    @property
    def policy(self) -> Policy:
        return self.settings.policy

    def key(self, path: DavPath) -> str:
        return path.file_key(self.prefix)

    def dir_prefix(self, path: DavPath) -> str:
        return path.dir_prefix(self.prefix)

    def href(self, path: DavPath, is_dir: bool | None = None) -> str:
        return path.href(self.mount, is_dir)

    def is_noise(self, path: DavPath) -> bool:
        """Client noise (``._*``, ``.DS_Store``...) lives in the noise area, not the store,
        unless the share stores it (``--store-client-noise``)."""
        return bool(path.parts) and not self.policy.store_client_noise and is_client_noise(
            path.name
        )

    def noise_file(self, path: DavPath) -> NoiseFile | None:
        """The noise area file at ``path`` (a path for which ``is_noise`` is true)."""
        return None if path.trailing_slash else self.noise.get(self.key(path))

    async def is_dir(self, path: DavPath) -> bool:
        """A directory exists if anything (its marker included) lies under its prefix."""
        if path.is_root:
            return True
        page = await self.view.list_page(self.dir_prefix(path), None, 1)
        return bool(page.objects or page.prefixes)

    async def stat(self, path: DavPath) -> Entry:
        """What the path names: a file (one HEAD, cached) or else a directory."""
        if path.is_root:
            return Entry("", True)
        if self.is_noise(path):  # answered without a store call
            held = self.noise_file(path)
            if held is None:
                raise NotFound(f"{self.href(path)} does not exist")
            return Entry.file(path.name, held.info)
        if not path.trailing_slash:
            try:
                info = await self.view.stat(self.key(path))
                return Entry.file(path.name, info)
            except NotFound:
                pass
        if await self.is_dir(path):
            return Entry(path.name, True)
        raise NotFound(f"{self.href(path)} does not exist")

    def listdir(self, path: DavPath) -> AsyncIterator[Entry]:
        return list_dir(self.view, self.dir_prefix(path), self.policy.store_client_noise)

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
    # Client noise kept out of the store; the composition root puts it on the state store.
    noise: NoiseArea = field(default_factory=NoiseArea)

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

    # ---- shared state (gateway.state): where this share's locks and properties live ----
    @property
    def state_scope(self) -> str:
        """The state-store scope of this share's locks and dead properties: its store.

        Paths and keys in the scope are full object keys (``state_path``, ``props_key``),
        share prefix and jail included. So every jail of a share, and every share or
        mount serving the same keys, sees the same locks and properties, while two shares
        over one bucket with different prefixes never collide (their keys differ), and
        two stores never do (their descriptions differ).
        """
        return self.view.description

    def state_path(self, path: DavPath) -> str:
        """The lock path of ``path`` in ``state_scope``: its full key, no trailing ``/``
        (a collection and a file of its name share it, as RFC 4918 lock roots do)."""
        return self.key(path) if path.parts else self.prefix.rstrip("/")

    def path_of(self, state_path: str) -> DavPath | None:
        """The path in this share of a ``state_path``: None when it lies above the share's
        root (a lock taken through a wider view)."""
        base = self.prefix.rstrip("/")
        if state_path == base:
            return DavPath(())
        if base and not state_path.startswith(base + "/"):
            return None
        rest = state_path[len(base) + 1 :] if base else state_path
        return DavPath(tuple(rest.split("/")))

    def props_key(self, path: DavPath, is_dir: bool) -> str:
        """The dead-property key of ``path``: its object key, or for a collection its
        ``dir/`` prefix (the share's prefix for its root), so a collection's properties
        are the first of the keys its prefix spans."""
        return self.dir_prefix(path) if is_dir else self.key(path)

    def href(self, path: DavPath, is_dir: bool | None = None) -> str:
        return path.href(self.mount, is_dir)

    def is_noise(self, path: DavPath) -> bool:
        """Client noise (``._*``, ``.DS_Store``...) lives in the noise area, not the store,
        unless the share stores it (``--store-client-noise``)."""
        return bool(path.parts) and not self.policy.store_client_noise and is_client_noise(
            path.name
        )

    async def noise_file(self, path: DavPath) -> NoiseFile | None:
        """The noise area file at ``path`` (a path for which ``is_noise`` is true);
        ``StateUnavailable`` (503) while a shared state store cannot be reached."""
        return None if path.trailing_slash else await self.noise.get(self.key(path))

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
            held = await self.noise_file(path)
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

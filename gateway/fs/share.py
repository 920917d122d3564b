"""A share: one source served at one mount point, with its policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import cached_property

from gateway.engine import StoreView
from gateway.errors import NotFound, NotPermitted
from gateway.fs.filters import DirVerdict, KeyFilter
from gateway.fs.listing import Entry, list_dir
from gateway.fs.noise import NoiseArea, NoiseFile, is_client_noise
from gateway.fs.paths import DavPath
from gateway.fs.quota import Quota
from gateway.settings import Policy, ShareSettings
from gateway.storage.base import ObjectInfo

# Keys looked at, in one listing, to learn whether a directory the filters cannot judge
# by its name holds a visible key (docs/SEMANTICS.md, "Key filters").
PROBE_KEYS = 1000


def mount_parts(settings: ShareSettings) -> tuple[str, ...]:
    """The names of the share's mount point: ``("a", "b")`` for ``/a/b``, ``()`` for ``/``."""
    return tuple(p for p in settings.mount.split("/") if p)


@dataclass
class Share:
    settings: ShareSettings
    view: StoreView
    # Client noise kept out of the store; the composition root puts it on the state store.
    noise: NoiseArea = field(default_factory=NoiseArea)
    # Where the filters' relative keys start: the share's own prefix, kept by the copies a
    # jail makes (gateway.fs.mounts.jailed), so a jail never changes what is hidden.
    filter_base: str | None = None
    # The share's quota (``quota`` setting), its used bytes counted in the background.
    quota: Quota | None = None

    def __post_init__(self) -> None:
        if self.filter_base is None:
            self.filter_base = self.settings.source.prefix
        if self.quota is None and self.settings.policy.quota is not None:
            self.quota = Quota(self.view, self.settings.source.prefix,
                               self.settings.policy.quota)

    @property
    def mount(self) -> str:
        return self.settings.mount

    @cached_property
    def mount_parts(self) -> tuple[str, ...]:
        # Once per share, not per request: Gateway.resolve tries every share's.
        return mount_parts(self.settings)

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

    # ---- key filters (gateway.fs.filters): every front-end asks here ----
    @cached_property
    def filters(self) -> KeyFilter:
        policy = self.settings.policy
        return KeyFilter.build(policy.include or (), policy.exclude or (), policy.filter)

    def _relative(self, key: str) -> str:
        base = self.filter_base or ""
        return key[len(base):] if key.startswith(base) else key

    def key_visible(self, key: str) -> bool:
        """Whether the object ``key`` (a full key; ``d/`` a marker) exists for clients."""
        return self.filters.visible(self._relative(key))

    def file_hidden(self, path: DavPath) -> bool:
        """The filters hide the file named by ``path``."""
        return bool(path.parts) and not self.key_visible(self.key(path))

    def refuse_hidden(self, path: DavPath, is_dir: bool) -> None:
        """403 for creating a name the filters hide (file, or collection marker). Client
        noise never reaches the store, so filters do not apply to it."""
        if not self.filters.active or not path.parts or self.is_noise(path):
            return
        key = self.dir_prefix(path) if is_dir else self.key(path)
        why = self.filters.why_hidden(self._relative(key))
        if why is not None:
            raise NotPermitted(
                f"{self.href(path, is_dir)} is hidden on this share by its {why}: it cannot "
                "be created"
            )

    async def dir_visible(self, prefix: str) -> bool:
        """Whether the directory at ``prefix`` (``a/b/``, full key) holds a visible key.

        Decided from the name when the filters allow (no store call), else from one listing
        of at most ``PROBE_KEYS`` keys under it: a directory whose first ``PROBE_KEYS``
        keys are all hidden counts as hidden (never shown for hidden keys' sake)."""
        verdict = self.filters.directory(self._relative(prefix))
        if verdict is DirVerdict.HIDDEN:
            return False
        if verdict is DirVerdict.VISIBLE:
            return True
        page = await self.view.list_tree_page(prefix, None, PROBE_KEYS)
        return any(self.key_visible(info.key) for info in page.objects)

    async def file_info(self, path: DavPath) -> ObjectInfo:
        """The object at ``path`` (a HEAD, cached); NotFound if absent or hidden."""
        if self.file_hidden(path):
            raise NotFound(f"{self.href(path)} does not exist")
        return await self.view.stat(self.key(path))

    async def is_dir(self, path: DavPath) -> bool:
        """A directory exists if anything (its marker included) lies under its prefix;
        with filters, anything visible."""
        if path.is_root:
            return True
        prefix = self.dir_prefix(path)
        if self.filters.active:
            verdict = self.filters.directory(self._relative(prefix))
            if verdict is not DirVerdict.VISIBLE:
                return await self.dir_visible(prefix)
        page = await self.view.list_page(prefix, None, 1)
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
                info = await self.file_info(path)
                return Entry.file(path.name, info)
            except NotFound:
                pass
        if await self.is_dir(path):
            return Entry(path.name, True)
        raise NotFound(f"{self.href(path)} does not exist")

    def listdir(self, path: DavPath) -> AsyncIterator[Entry]:
        if not self.filters.active:
            return list_dir(self.view, self.dir_prefix(path), self.policy.store_client_noise)
        return list_dir(self.view, self.dir_prefix(path), self.policy.store_client_noise,
                        self.key_visible, self.dir_visible)

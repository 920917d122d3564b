"""Shares beyond the one-source case: the virtual root that lists the mounts, and jails.

With several shares (or one not mounted at ``/``), the URL ``/`` and the folders above a
mount belong to no source. They are served by a read-only *root share* whose store is a
tiny virtual one listing the mount names as prefixes: the handlers need no special case,
so ``OPTIONS /`` and ``PROPFIND /`` (Windows probes both) answer like any folder, the
browser and JSON listings show the shares, and writes are refused.

A *jail* is a key prefix inside a share: the jailed user sees the share rooted there. It
is a derived Share whose source prefix is the share's prefix plus the jail; every key is
built from an already decoded and validated path, so nothing can reach outside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from gateway.engine import Engine
from gateway.errors import NotFound
from gateway.fs.share import Share, mount_parts
from gateway.settings import Policy, ShareSettings, Source
from gateway.storage.base import GetResult, ListPage, ObjectInfo
from gateway.storage.noversions import NoVersions
from gateway.storage.readonly import RefusedWrites

ROOT_REFUSAL = "/ only lists the shares: write inside one of them"


class RootStore(NoVersions, RefusedWrites):
    """An ObjectStore holding no objects: only the folders leading to each mount."""

    def __init__(self, mounts: Iterable[tuple[str, ...]]) -> None:
        self.mounts = tuple(sorted(set(mounts)))

    @property
    def description(self) -> str:
        return "the list of shares"

    @property
    def refusal(self) -> str:
        return ROOT_REFUSAL

    def children(self, prefix: str) -> tuple[str, ...]:
        """The common prefixes directly under ``prefix`` ("" or ``a/b/``)."""
        above = tuple(p for p in prefix.split("/") if p)
        depth = len(above)
        names = {m[depth] for m in self.mounts if len(m) > depth and m[:depth] == above}
        return tuple(prefix + name + "/" for name in sorted(names))

    async def check(self) -> None:
        return None

    async def head(self, key: str) -> ObjectInfo:
        raise NotFound(f"no share is mounted at /{key}")

    async def get(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        if_match: str | None = None,
    ) -> GetResult:
        raise NotFound(f"no share is mounted at /{key}")

    async def list_page(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        prefixes = tuple(p for p in self.children(prefix) if token is None or p > token)
        page = prefixes[:max_keys]
        return ListPage((), page, page[-1] if len(prefixes) > max_keys else None)

    async def close(self) -> None:
        return None


ROOT_SETTINGS = ShareSettings(
    mount="/",
    source=Source("s3", "bucketdav-shares"),  # descriptive only: the store is virtual
    policy=Policy(read_only=True),
)


def needs_root(shares: Iterable[ShareSettings]) -> bool:
    """True unless one share is mounted at ``/`` itself."""
    return all(s.mount != "/" for s in shares)


@dataclass
class RootShare(Share):
    """The read-only share serving ``/``: a view of a ``RootStore`` listing ``mounts``."""

    mounts: tuple[tuple[str, ...], ...] = ()

    @property
    def mount_names(self) -> tuple[str, ...]:
        return tuple("/".join(m) for m in self.mounts)


def root_share(engine: Engine, shares: Iterable[ShareSettings]) -> RootShare:
    """The read-only share serving ``/`` and the folders above the mounts."""
    store = RootStore(mount_parts(s) for s in shares)
    return RootShare(ROOT_SETTINGS, engine.view(store), mounts=store.mounts)


def narrowed_root(root: RootShare, names: Iterable[str]) -> RootShare:
    """``root`` listing only the mounts ``names`` (a user's visible shares), on the same
    engine."""
    store = RootStore(tuple(name.split("/")) for name in names)
    return RootShare(ROOT_SETTINGS, root.view.sibling(store), mounts=store.mounts)


def is_root(share: Share) -> bool:
    return isinstance(share, RootShare)


def jailed(share: Share, jail: str) -> Share:
    """``share`` seen from the key prefix ``jail`` ("" or ending in ``/``) inside it.

    The derived share keeps the mount (hrefs are unchanged), the view (one cache) and the
    noise area; only the source prefix grows, so every key it builds lies under the jail.
    """
    if not jail:
        return share
    source = share.settings.source
    settings = replace(share.settings, source=replace(source, prefix=source.prefix + jail))
    return replace(share, settings=settings)

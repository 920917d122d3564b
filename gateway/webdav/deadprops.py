"""Dead properties (RFC 4918 section 4): what PROPPATCH sets that the gateway does not compute.

They live in the app's ``StateStore`` (``--state``) per (``Share.state_scope``, key): a
file's object key, a collection's ``dir/`` prefix (``Share.props_key``), each value the
property element's XML as ``xml.serialize`` writes it, self-contained (its namespace
declarations and ``xml:lang`` with it), as PROPFIND returns it. They follow the
resource: COPY copies them, MOVE moves them, DELETE drops them, and a COPY or MOVE onto
an existing target replaces the target's. A collection's go with its prefix, so the
members' follow too. With ``memory`` they last for the process's life; with Redis they
survive restarts of the gateway. Bounded per resource
(``PROPS_MAX_BYTES`` of names plus values: 507 naming the limit).

Reads never depend on the state store: PROPFIND shows no dead properties while it is
unavailable. The hooks run after the object operation succeeded; if the state store fails
then, the operation's answer stands and one log line says the properties did not follow.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence

from aiohttp import web

from gateway.engine.mtimes import NAMESPACE
from gateway.errors import StateUnavailable
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.state import PROPS_MAX_BYTES, StateStore

log = logging.getLogger(__name__)

OWN = "{" + NAMESPACE + "}"


class DeadProps:
    def __init__(self, state: StateStore, max_bytes: int = PROPS_MAX_BYTES) -> None:
        self.state = state
        self.max_bytes = max_bytes

    async def get(self, share: Share, path: DavPath, is_dir: bool) -> dict[str, str] | None:
        """``{"{ns}name": element XML}`` of the resource; None while the state store is
        unavailable (the caller shows none, and may stop asking for this request)."""
        try:
            found = await self.state.props_get(share.state_scope,
                                               share.props_key(path, is_dir))
        except StateUnavailable:
            return None
        return _properties(found)

    async def get_many(self, share: Share, members: Sequence[tuple[DavPath, bool]]
                       ) -> list[dict[str, str]] | None:
        """``get`` of each (path, is_dir), in order, in one state call."""
        try:
            found = await self.state.props_get_many(
                share.state_scope, [share.props_key(path, is_dir) for path, is_dir in members])
        except StateUnavailable:
            return None
        return [_properties(props) if props else props for props in found]

    async def patch(self, share: Share, path: DavPath, is_dir: bool,
                    set: dict[str, str], remove: list[str]) -> None:
        """All or nothing; ``PropsLimit`` (507) past the cap, ``StateUnavailable`` (503)."""
        await self.state.props_patch(share.state_scope, share.props_key(path, is_dir), set,
                                     remove, max_bytes=self.max_bytes)

    # ---- following COPY, MOVE and DELETE ----------------------------------------------
    async def copied(self, share: Share, src: DavPath, dst: DavPath, *, is_dir: bool,
                     shallow: bool = False) -> None:
        """``src`` was copied to ``dst`` (replacing what was there): so are its
        properties, a collection's members' too unless ``shallow`` (COPY Depth 0)."""
        scope = share.state_scope
        await self._follow(
            "COPY",
            share.href(dst, is_dir),
            self.state.props_copy_prefix(scope, share.dir_prefix(src), share.dir_prefix(dst))
            if is_dir and not shallow
            else self.state.props_copy(scope, share.props_key(src, is_dir),
                                       share.props_key(dst, is_dir)),
        )

    async def moved(self, share: Share, src: DavPath, dst: DavPath, *, is_dir: bool) -> None:
        scope = share.state_scope
        await self._follow(
            "MOVE",
            share.href(dst, is_dir),
            self.state.props_move_prefix(scope, share.dir_prefix(src), share.dir_prefix(dst))
            if is_dir
            else self.state.props_move(scope, share.key(src), share.key(dst)),
        )

    async def deleted(self, share: Share, path: DavPath, *, is_dir: bool) -> None:
        """The resource is gone (a collection with everything under it)."""
        scope = share.state_scope
        await self._follow(
            "DELETE",
            share.href(path, is_dir),
            self.state.props_delete_prefix(scope, share.dir_prefix(path))
            if is_dir
            else self.state.props_delete(scope, share.key(path)),
        )

    async def _follow(self, method: str, href: str, step: Awaitable[object]) -> None:
        try:
            await step
        except StateUnavailable as exc:
            log.warning("%s of %s done, but its dead properties did not follow: %s",
                        method, href, exc.message)


def _properties(found: dict[str, str]) -> dict[str, str]:
    """The gateway's own records (a version's modification time) are not properties."""
    return {name: xml for name, xml in found.items() if not name.startswith(OWN)}


PROPS = web.AppKey("props", DeadProps)

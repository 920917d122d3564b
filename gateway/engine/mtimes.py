"""Where listings learn stored modification times (``x-amz-meta-mtime``).

S3 ListObjects returns no user metadata, so a listing cannot see an object's mtime, and one
HEAD per listed object would make a folder of 1,000 files cost 1,000 requests. Instead, each
time is kept beside the object, by version:

* in this process, an LRU index ``(scope, key) -> (etag, mtime or None)`` filled by every
  write through the gateway, every HEAD or GET, and every lookup below;
* in the state store, as a reserved dead property of the key (``RECORD``, which PROPFIND
  never shows and PROPPATCH may not set) holding the etag and the time, written through at
  each write that stores an mtime. Dead properties follow COPY, MOVE and DELETE, and
  with Redis they outlive a restart and are seen by every replica.

Both are keyed by the object's ETag: a time is shown only for the version it was given
to, so an object replaced behind the gateway's back shows the store's date again, never a
stale time. A listing costs nothing for keys the index knows and one state-store call per
page for the keys it does not (``props_get_many``; the answer, found or not, is then known
for that version). Reads never depend on the state store: while it is unavailable
a listing shows the store's dates for the keys this process does not know.

A PROPPATCH of the time on a zero-byte placeholder writes the same record for the
placeholder's version; the PUT that fills that version carries it into the object
(``StoreView.mtime_of``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from xml.sax.saxutils import escape, unescape

from gateway.errors import GatewayError
from gateway.state.base import StateStore
from gateway.storage.base import ObjectInfo
from gateway.storage.mtime import format_mtime, parse_mtime

log = logging.getLogger("bucketdav")

NAMESPACE = "urn:bucketdav:"  # the gateway's own properties: never shown, never settable
RECORD = "{" + NAMESPACE + "}mtime"


def record_xml(etag: str, mtime: float) -> str:
    """The reserved dead property: well-formed XML like every stored property, holding
    the time and the ETag of the version it belongs to."""
    return f'<mtime xmlns="{NAMESPACE}">{format_mtime(mtime)} {escape(etag)}</mtime>'


def parse_record(xml: str | None) -> tuple[str, float] | None:
    """(etag, mtime) of a record, None for anything else."""
    head = f'<mtime xmlns="{NAMESPACE}">'
    if xml is None or not xml.startswith(head) or not xml.endswith("</mtime>"):
        return None
    text = unescape(xml[len(head): -len("</mtime>")])
    value, _, etag = text.partition(" ")
    mtime = parse_mtime(value)
    return None if mtime is None or not etag else (etag, mtime)


class MtimeIndex:
    """One per process (on the engine), shared by every view."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self.state: StateStore | None = None
        self._known: OrderedDict[tuple[str, str], tuple[str, float | None]] = OrderedDict()

    def learn(self, scope: str, key: str, etag: str, mtime: float | None) -> None:
        """What this version's time is (None: it has none). A version known to have a
        time keeps it: a HEAD of a placeholder does not see the time PROPPATCH gave it."""
        entry = (scope, key)
        old = self._known.get(entry)
        if mtime is None and old is not None and old[0] == etag and old[1] is not None:
            self._known.move_to_end(entry)
            return
        self._known[entry] = (etag, mtime)
        self._known.move_to_end(entry)
        while len(self._known) > self.max_entries:
            self._known.popitem(last=False)

    def lookup(self, scope: str, key: str, etag: str) -> tuple[bool, float | None]:
        """(known, mtime) for this version of the key."""
        old = self._known.get((scope, key))
        if old is None or old[0] != etag:
            return False, None
        self._known.move_to_end((scope, key))
        return True, old[1]

    async def record(self, scope: str, key: str, etag: str, mtime: float) -> None:
        """Learn the time and write it through to the state store; a state store that
        fails leaves it known to this process only (one log line)."""
        self.learn(scope, key, etag, mtime)
        if self.state is None:
            return
        try:
            await self.state.props_patch(scope, key, {RECORD: record_xml(etag, mtime)}, ())
        except GatewayError as exc:
            log.warning("the modification time of %r is known to this process only: %s",
                        key, exc.message)

    async def fetch(self, scope: str, key: str, etag: str) -> float | None:
        """The time of this version: the index, else the state store's record."""
        known, mtime = self.lookup(scope, key, etag)
        if known or self.state is None:
            return mtime
        try:
            props = await self.state.props_get(scope, key)
        except GatewayError:
            return None  # not learnt: asked again once the state store is back
        return self._learn_record(scope, key, etag, props)

    def _learn_record(self, scope: str, key: str, etag: str,
                      props: dict[str, str]) -> float | None:
        """The time a key's dead properties hold for this version (None: none), learnt."""
        found = parse_record(props.get(RECORD))
        mtime = found[1] if found is not None and found[0] == etag else None
        self.learn(scope, key, etag, mtime)
        return mtime

    async def fill(self, scope: str, objects: tuple[ObjectInfo, ...]
                   ) -> list[float | None]:
        """The time of each listed object (None: none), in order. What is known here is
        answered at once; the rest is one state-store call for the page."""
        found: list[float | None] = []
        unknown: list[int] = []
        for info in objects:
            if info.mtime is not None:
                found.append(info.mtime)
                continue
            known, mtime = self.lookup(scope, info.key, info.etag)
            found.append(mtime)
            if not (known or self.state is None or info.key.endswith("/")):
                unknown.append(len(found) - 1)
        if not unknown or self.state is None:
            return found
        try:  # one state call for the page's unknown keys
            records = await self.state.props_get_many(scope, [objects[i].key for i in unknown])
        except GatewayError:
            return found  # not learnt: asked again once the state store is back
        for i, props in zip(unknown, records, strict=True):
            found[i] = self._learn_record(scope, objects[i].key, objects[i].etag, props)
        return found

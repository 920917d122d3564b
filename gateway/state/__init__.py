"""What the gateway's processes share: locks, dead properties, the client-noise area,
write guards and invalidation events (DESIGN.md, "Shared state").

One narrow protocol, ``StateStore`` (``base.py``), two backends passing one contract suite
(``tests/state/test_contract.py``):

* ``memory`` (``MemoryState``): the default, in this process; everything lasts for the
  process's life. Enough for one process.
* ``redis://[user:password@]host:port/db`` or ``rediss://`` (TLS, verified against the
  system's CAs or ``?ssl_ca_certs=FILE``) (``RedisState``): Redis 7 or Valkey, standalone
  (not Cluster), shared by every process and replica. The password may come from the URL,
  ``BUCKETDAV_STATE_PASSWORD`` or a file named by ``BUCKETDAV_STATE_PASSWORD_FILE`` (never
  needed on a command line). Dead properties survive gateway restarts (and Redis restarts,
  as far as its own persistence goes).

``open_state(url)`` opens either; with Redis it checks the server answers and fails with one
line (``StateUnavailable``) if not. Layering: this package imports only ``gateway.errors``
and ``gateway.settings``; the engine, fs and webdav layers use it.

The model, the same in both backends:

* **Scope**: every record lives in a scope, a string the caller chooses as the identity of
  what is shared. Locks and properties use the store's description, with full object keys
  (share prefix and jail included) as paths: two shares over one bucket with different
  prefixes do not collide, while the jails of one share (same scope, different paths) do
  share their locks and properties. A noise area's scope is the store and the share's mount
  (``gateway.app``): each share has an area of its own.
* **Paths** (lock roots): names joined by ``/`` with no leading or trailing slash, ``""``
  being the scope's root; a collection has the same path as a file of its name would.
  Property and noise **keys** are opaque strings to the store (callers use the same path
  form), except that the prefix forms of the properties work on plain string prefixes: pass
  ``"dir/"`` for what is under ``dir``.
* **Locks** (RFC 4918): ``acquire`` checks, in one atomic step (a Lua script on Redis),
  locks on the ancestors with depth infinity, on the root itself and — for a
  depth-infinity request — below it (two shared locks never conflict; anything with an
  exclusive one does), then the caps (``LockLimits``: locks per resource, live locks per
  principal across scopes), and grants. Conflicts raise ``LockConflict`` (423) naming the
  conflicting lock's root, caps ``LockLimit`` (507). Tokens are ``urn:uuid:``. Expiry is by
  TTL (``timeout`` seconds from the grant or the last ``refresh``); expired locks vanish
  from every answer. ``created`` keeps the paths created under a lock (the placeholder rule
  of DESIGN.md); ``drop`` forgets a deleted resource's locks and marks.
* **Dead properties** per (scope, key): ``{"{namespace}name": xml}``; ``props_patch`` is
  all or nothing and bounded (``PropsLimit``, 507, past ``max_bytes`` of names plus values);
  copy, move and delete follow COPY, MOVE and DELETE, one key or a whole prefix (the
  destination's old properties are dropped first: COPY and MOVE replace).
* **The client-noise area**: ``._*``, ``.DS_Store``... files by (scope, key) with the
  semantics of ``gateway.fs.noise`` (``NoiseLimits``: 10 min TTL from the last put or move,
  16 MiB per scope with ``ENTRY_OVERHEAD`` bytes charged per entry, bodies over 1 MiB kept
  as metadata only); when full, the entries put longest ago go first.
* **Write guards**: ``async with state.guard(scope, key):`` is held by one caller at a time
  across processes; a second caller waits (polling, up to ``wait`` seconds, default
  ``GUARD_WAIT``) and then gets ``Busy`` (423). A holder that died frees it after ``ttl``
  (``GUARD_TTL``): the holder must finish within ``ttl``.
* **Invalidation events**: ``publish(scope, key, prefix=...)`` reaches every subscriber of
  every process (this one's too, on Redis a moment later); after a lost subscription comes
  back, subscribers get ``EVERYTHING`` because events may have been missed.
* **Failure**: a Redis that cannot be reached makes operations raise ``StateUnavailable``
  (503, naming the state store) within a short timeout, and at once while it is known down;
  ``available`` says so, ``healthy()`` tries for /readyz, and the store reconnects with
  backoff by itself. A guard released while Redis is down expires after its ttl.

Who uses what (the app opens the store, ``Gateway.state``, and closes it):

* the lock service: ``acquire`` / ``refresh`` / ``release`` / ``get`` for LOCK and UNLOCK,
  ``covering`` for lockdiscovery and the If header, ``below`` for recursive writes,
  ``drop`` after DELETE and MOVE, ``note_created`` / ``LockRecord.created`` for the
  placeholder rule, ``count`` for metrics;
* PROPPATCH and PROPFIND: ``props_get`` / ``props_patch``, and ``props_get_many`` for a
  Depth 1 answer's members (a listing page at a time); COPY, MOVE and DELETE: the other
  ``props_*`` (the ``_prefix`` forms for collections);
* the noise area (``gateway.fs.noise``): ``noise_*`` with ``NoiseLimits``;
* the engine's write guard: ``guard`` around a create's commit;
* the metadata and listing caches: ``publish`` after every write, ``subscribe`` to drop
  entries (``Invalidation.everything``: all of them);
* /readyz: ``healthy()``; anything else answers 503 through ``StateUnavailable``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from gateway.settings import SettingsError
from gateway.state.base import (
    ENTRY_OVERHEAD,
    EVERYTHING,
    GUARD_TTL,
    GUARD_WAIT,
    LOCK_LIMITS,
    NOISE_LIMITS,
    PROPS_MAX_BYTES,
    Busy,
    Depth,
    Invalidation,
    LockConflict,
    LockLimit,
    LockLimits,
    LockNotOwned,
    LockRecord,
    NoiseFile,
    NoiseLimits,
    PropsLimit,
    StateStore,
)
from gateway.state.memory import MemoryState

__all__ = [
    "ENTRY_OVERHEAD",
    "EVERYTHING",
    "GUARD_TTL",
    "GUARD_WAIT",
    "LOCK_LIMITS",
    "NOISE_LIMITS",
    "PASSWORD_ENV",
    "PASSWORD_FILE_ENV",
    "PROPS_MAX_BYTES",
    "Busy",
    "Depth",
    "Invalidation",
    "LockConflict",
    "LockLimit",
    "LockLimits",
    "LockNotOwned",
    "LockRecord",
    "MemoryState",
    "NoiseFile",
    "NoiseLimits",
    "PropsLimit",
    "StateStore",
    "open_state",
    "state_description",
]

PASSWORD_ENV = "BUCKETDAV_STATE_PASSWORD"
MAX_CONNECTIONS = 32  # to Redis, per process (one of them held by the event subscription)
HEALTH_CHECK = 15  # seconds a Redis connection may sit idle before it is pinged
PASSWORD_FILE_ENV = "BUCKETDAV_STATE_PASSWORD_FILE"


def _password(env: Mapping[str, str]) -> str | None:
    """The Redis password from the environment, or from the file it names. Read here, like
    the AWS chain reads its own variables: a secret never passes through the settings."""
    if env.get(PASSWORD_ENV):
        return env[PASSWORD_ENV]
    path = env.get(PASSWORD_FILE_ENV)
    if not path:
        return None
    try:
        return Path(path).read_text("utf-8").rstrip("\r\n")
    except OSError as e:
        raise SettingsError(f"{PASSWORD_FILE_ENV}: cannot read {path}: {e.strerror}") from None


def state_description(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    netloc = f"{user}@{hostport}" if user else hostport
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def open_state(
    url: str,
    *,
    env: Mapping[str, str] | None = None,
    namespace: str = "bucketdav",
    timeout: float = 2.0,  # noqa: ASYNC109 - bounds every later call too
) -> StateStore:
    """Open the state store named by ``--state``: ``memory`` or a Redis URL.

    A malformed URL raises ``SettingsError``; a Redis that does not answer within
    ``timeout`` raises ``StateUnavailable`` with one line saying which and why. ``namespace``
    prefixes every Redis key, so deployments can share one database.
    """
    if url == "memory":
        return MemoryState()
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise SettingsError(
            f"--state {state_description(url)!r}: use memory, redis://host:port/db or "
            "rediss://host:port/db"
        )
    try:
        port = parts.port
    except ValueError:
        port = None
        parts = parts._replace(netloc="")
    db = parts.path.strip("/")
    if not parts.hostname or port is None or not (db == "" or db.isdigit()):
        raise SettingsError(
            f"--state {state_description(url)!r}: expected "
            f"{parts.scheme}://[user:password@]host:port/db"
        )
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.retry import Retry  # the sync one returns the coroutine untried
    from redis.backoff import NoBackoff

    from gateway.state.redis import RedisState

    password = None if parts.password is not None else _password(os.environ if env is None
                                                                  else env)
    # A bounded pool: a burst of requests waits for a connection (within the timeout)
    # instead of opening thousands of them at once.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout,
        password=password,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        # One quick second try (a pooled connection may be stale after a restart); the
        # store's own backoff does the rest.
        retry=Retry(NoBackoff(), 1),
        # An idle connection (the event subscription above all) is pinged before use, so a
        # silent network cut is noticed and the subscription comes back (EVERYTHING).
        health_check_interval=HEALTH_CHECK,
        decode_responses=False,
    )
    client = Redis.from_pool(pool)
    store = RedisState(client, state_description(url), namespace=namespace, timeout=timeout)
    try:
        await store.start()
    except BaseException:
        await client.aclose()
        raise
    return store

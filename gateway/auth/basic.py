"""HTTP Basic credentials checked against bcrypt hashes, in constant time.

A bcrypt check costs a few hundred milliseconds of CPU by design, and WebDAV clients send
the same credentials with every request: so checks run in threads of their own (the event
loop keeps serving), and a successful check is remembered under an HMAC of the credentials
with a per-process key (never the password itself) for as long as the client keeps using
them, ``remember`` seconds at a time. Remembered credentials never meet the throttle.

A failure takes as long whatever the name, so that names cannot be told apart by timing:
a name nobody has is checked against a dummy hash of the highest cost in use, and a failure
against a cheaper hash is held until a check of that cost would have ended: for as long as
one of the recent checks at that cost took, drawn at random, so that under any load the
cheap failures take the time the costly ones do. Hashes cheaper than cost ``MIN_COST``
are named in the log when they are loaded, one line per user.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import bcrypt
from cachetools import TTLCache

from gateway.auth.htpasswd import HtpasswdFile
from gateway.auth.proxies import TrustedProxies
from gateway.auth.throttle import LoginThrottle, Throttled
from gateway.auth.users import User, anonymous_user
from gateway.settings import AuthSettings, UserSettings

log = logging.getLogger("bucketdav.auth")

BCRYPT_MAX_BYTES = 72  # bcrypt only ever looks at the first 72 bytes
MIN_COST = 10  # cheaper hashes are warned about: quick to crack once stolen
DEFAULT_COST = 12  # the dummy's cost while no user has a hash
RECENT = 32  # checks at the highest cost whose durations a cheap failure draws from


def parse_basic(header: str) -> tuple[str, str] | None:
    """``(name, password)`` from ``Basic base64(name:password)``, or None if malformed."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # what older clients send (RFC 7617 allows both)
    name, sep, password = text.partition(":")
    if not sep or not name:
        return None
    return name, password


def _cost(hashed: str | bytes) -> int:
    return int(hashed[4:6])


def _check(password: bytes, hashed: bytes) -> bool:
    return bcrypt.checkpw(password[:BCRYPT_MAX_BYTES], hashed)


def _timed_check(password: bytes, hashed: bytes) -> tuple[bool, float, float]:
    """The check, and when it started and ended on its thread (waiting for a free thread
    is not part of it: a busy server delays every name alike)."""
    started = time.monotonic()
    ok = _check(password, hashed)
    return ok, started, time.monotonic()


def _make_dummy(cost: int) -> bytes:
    return bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(cost))


class Authenticator:
    def __init__(
        self,
        settings: AuthSettings,
        throttle: LoginThrottle | None = None,
        remember: float = 300.0,
        proxies: TrustedProxies | None = None,
    ) -> None:
        self.settings = settings
        self.throttle = throttle if throttle is not None else LoginThrottle()
        # The app parses --trusted-proxy once for the limits and hands the result over.
        self.proxies = (proxies if proxies is not None
                        else TrustedProxies.parse(settings.trusted_proxy))
        self.accounts: dict[str, UserSettings] = {u.name: u for u in settings.users}
        self.htpasswd = HtpasswdFile(settings.htpasswd) if settings.htpasswd else None
        self.anonymous: User | None = (
            None if settings.anonymous == "off" else
            anonymous_user(read_only=settings.anonymous == "read-only")
        )
        self._key = secrets.token_bytes(32)
        self._verified: TTLCache[bytes, str] = TTLCache(maxsize=4096, ttl=remember)
        self._file_users: dict[str, str] | None = None  # the htpasswd dict merged last
        self._merged: dict[str, str] = {}
        self._max_cost = DEFAULT_COST
        self._warned: set[tuple[str, str]] = set()
        self._dummy = b""  # a hash of _max_cost, for names nobody has
        self._recent: deque[float] = deque(maxlen=RECENT)  # seconds checks at _max_cost took
        # bcrypt runs on threads of its own: a burst of logins (or of guesses from many
        # addresses) queues here instead of filling the loop's default executor, which
        # file I/O uses. Its threads start with the first check; close() ends them.
        self._bcrypt = ThreadPoolExecutor(
            max_workers=os.cpu_count() or 2, thread_name_prefix="bcrypt"
        )

    def close(self) -> None:
        """Stop the bcrypt threads (a check already running finishes on its own)."""
        self._bcrypt.shutdown(wait=False, cancel_futures=True)

    # ---- the users' hashes ------------------------------------------------------------------

    def _hashes(self) -> dict[str, str]:
        """Every user's current hash: the config's ``password_hash`` wins over the file.
        Worked out again only when the file was re-read; new cheap hashes are logged."""
        file_users = self.htpasswd.users() if self.htpasswd else {}
        if file_users is self._file_users:
            return self._merged
        merged = dict(file_users)
        for account in self.accounts.values():
            if account.password_hash:
                merged[account.name] = account.password_hash
        for name, hashed in merged.items():
            cost = _cost(hashed)
            if cost < MIN_COST and (name, hashed) not in self._warned:
                self._warned.add((name, hashed))
                log.warning(
                    "user %r: bcrypt cost %d is cheaper than %d: a stolen hash is quick to "
                    "crack; recreate it with `htpasswd -nBC 12 %s`", name, cost, MIN_COST, name,
                )
        max_cost = max((_cost(h) for h in merged.values()), default=DEFAULT_COST)
        if max_cost != self._max_cost:
            self._max_cost, self._dummy = max_cost, b""
            self._recent.clear()
        self._file_users, self._merged = file_users, merged
        return merged

    async def _dummy_hash(self) -> bytes:
        if self._dummy:
            return self._dummy
        cost = self._max_cost
        dummy = await asyncio.get_running_loop().run_in_executor(self._bcrypt, _make_dummy, cost)
        if cost == self._max_cost:  # not changed by a re-read meanwhile
            self._dummy = dummy
        return dummy

    def _learn(self, cost: int, seconds: float) -> None:
        """A check at ``cost`` took ``seconds``: what cheaper failures take, if the highest."""
        if cost == self._max_cost:
            self._recent.append(seconds)

    async def _hold(self, started: float, cost: int) -> None:
        """Hold a failure checked at ``cost`` until a check at the highest cost in use,
        started at ``started``, would have ended."""
        if cost >= self._max_cost:
            return
        if not self._recent:  # not measured yet (prepare() measures it at startup)
            dummy = await self._dummy_hash()
            _, begun, ended = await asyncio.get_running_loop().run_in_executor(
                self._bcrypt, _timed_check, b"", dummy
            )
            self._learn(_cost(dummy), ended - begun)
        taken = secrets.choice(self._recent) if self._recent else 0.0
        delay = started + taken - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def prepare(self) -> list[str]:
        """At startup: log cheap hashes, make the dummy hash and measure a check of the
        highest cost now rather than on the first failure; return warnings about accounts
        that can never log in."""
        hashes = self._hashes()
        if self.settings.passwords:
            self._dummy = _make_dummy(self._max_cost)
            _, started, ended = _timed_check(b"", self._dummy)
            self._learn(self._max_cost, ended - started)
        return [
            f"user {name!r} has no password_hash and is not in the htpasswd file: "
            "it cannot log in"
            for name in self.accounts if name not in hashes
        ]

    # ---- logging in -------------------------------------------------------------------------

    def user(self, name: str) -> User:
        account = self.accounts.get(name)
        return User(name, account.grants) if account else User(name)

    def _remembered(self, name: str, secret: bytes, hashed: str | None) -> tuple[bytes, bool]:
        mac = hmac.new(self._key, name.encode("utf-8") + b"\0" + secret, hashlib.sha256)
        remembered = mac.digest()
        if hashed is not None and self._verified.get(remembered) == hashed:
            self._verified[remembered] = hashed  # in use: remembered for another while
            return remembered, True
        return remembered, False

    async def login(self, name: str, password: str) -> User | None:
        """The user if ``password`` is right, else None (a failure in the same time for
        every name)."""
        hashed = self._hashes().get(name)
        secret = password.encode("utf-8")
        remembered, known = self._remembered(name, secret, hashed)
        if known:
            return self.user(name)
        target = hashed.encode("ascii") if hashed is not None else await self._dummy_hash()
        ok, started, ended = await asyncio.get_running_loop().run_in_executor(
            self._bcrypt, _timed_check, secret, target
        )
        cost = _cost(target)
        self._learn(cost, ended - started)
        if ok and hashed is not None:
            self._verified[remembered] = hashed
            return self.user(name)
        await self._hold(started, cost)
        return None

    async def authenticate(self, client: str, header: str) -> User | Throttled | None:
        """Who an ``Authorization`` header from ``client`` is: the user, None (wrong or
        malformed: 401) or Throttled (429, nothing checked). Remembered credentials pass
        first; other attempts meet the throttle, then bcrypt."""
        credentials = parse_basic(header)
        if credentials is None:
            return None  # no name, no guess: nothing to count
        name, password = credentials
        if self._remembered(name, password.encode("utf-8"), self._hashes().get(name))[1]:
            return self.user(name)
        throttled = self.throttle.check(client, name)
        if throttled is not None:
            return throttled
        user = await self.login(name, password)
        if user is None:
            self.throttle.failed(client, name)
        else:
            self.throttle.succeeded(client, name)
        return user

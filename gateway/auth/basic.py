"""HTTP Basic credentials checked against bcrypt hashes, in constant time.

A bcrypt check costs a few hundred milliseconds of CPU by design, and WebDAV clients send
the same credentials with every request: so checks run in a worker thread (the event
loop keeps serving), and a successful check is remembered for a few minutes under an HMAC
of the credentials with a per-process key (never the password itself). A name nobody has
is checked against a dummy hash of the same cost, so a wrong name takes as long as a
wrong password.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

import bcrypt
from cachetools import TTLCache

from gateway.auth.htpasswd import HtpasswdFile
from gateway.auth.throttle import FailureThrottle
from gateway.auth.users import User, anonymous_user
from gateway.settings import AuthSettings, UserSettings

BCRYPT_MAX_BYTES = 72  # bcrypt only ever looks at the first 72 bytes


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


def _cost(hashed: str) -> int:
    return int(hashed[4:6])


def _check(password: bytes, hashed: bytes) -> bool:
    return bcrypt.checkpw(password[:BCRYPT_MAX_BYTES], hashed)


class Authenticator:
    def __init__(
        self,
        settings: AuthSettings,
        throttle: FailureThrottle | None = None,
        remember: float = 300.0,
    ) -> None:
        self.settings = settings
        self.throttle = throttle if throttle is not None else FailureThrottle()
        self.accounts: dict[str, UserSettings] = {u.name: u for u in settings.users}
        self.htpasswd = HtpasswdFile(settings.htpasswd) if settings.htpasswd else None
        self.anonymous: User | None = (
            None if settings.anonymous == "off" else
            anonymous_user(read_only=settings.anonymous == "read-only")
        )
        self._key = secrets.token_bytes(32)
        self._verified: TTLCache[bytes, str] = TTLCache(maxsize=4096, ttl=remember)
        self._dummy_cost = 0
        self._dummy = b""
        # bcrypt runs on threads of its own: a burst of logins (or of guesses from many
        # addresses) queues here instead of filling the loop's default executor, which
        # file I/O uses. Its threads start with the first check; close() ends them.
        self._bcrypt = ThreadPoolExecutor(
            max_workers=os.cpu_count() or 2, thread_name_prefix="bcrypt"
        )

    def close(self) -> None:
        """Stop the bcrypt threads (a check already running finishes on its own)."""
        self._bcrypt.shutdown(wait=False, cancel_futures=True)

    def _hashes(self) -> dict[str, str]:
        """Every user's current hash: the config's ``password_hash`` wins over the file."""
        hashes = dict(self.htpasswd.users()) if self.htpasswd else {}
        for account in self.accounts.values():
            if account.password_hash:
                hashes[account.name] = account.password_hash
        return hashes

    def _dummy_hash(self, hashes: dict[str, str]) -> bytes:
        """A hash of the highest cost in use, checked when the name is unknown."""
        cost = max((_cost(h) for h in hashes.values()), default=12)
        if cost != self._dummy_cost:
            self._dummy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(cost))
            self._dummy_cost = cost
        return self._dummy

    def prepare(self) -> list[str]:
        """Compute the dummy hash now (at startup) rather than on the first unknown name;
        return warnings about accounts that can never log in."""
        hashes = self._hashes()
        if self.settings.passwords:
            self._dummy_hash(hashes)
        return [
            f"user {name!r} has no password_hash and is not in the htpasswd file: "
            "it cannot log in"
            for name in self.accounts if name not in hashes
        ]

    def user(self, name: str) -> User:
        account = self.accounts.get(name)
        return User(name, account.grants) if account else User(name)

    async def login(self, name: str, password: str) -> User | None:
        """The user if ``password`` is right, else None (in the same time either way)."""
        hashes = self._hashes()
        hashed = hashes.get(name)
        secret = password.encode("utf-8")
        mac = hmac.new(self._key, name.encode("utf-8") + b"\0" + secret, hashlib.sha256)
        remembered = mac.digest()
        if hashed is not None and self._verified.get(remembered) == hashed:
            return self.user(name)
        loop = asyncio.get_running_loop()
        if hashed is not None:
            target = hashed.encode("ascii")
        else:
            target = await loop.run_in_executor(self._bcrypt, self._dummy_hash, hashes)
        ok = await loop.run_in_executor(self._bcrypt, _check, secret, target)
        if not ok or hashed is None:
            return None
        self._verified[remembered] = hashed
        return self.user(name)

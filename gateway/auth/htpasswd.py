"""An htpasswd file of bcrypt entries, re-read when it changes on disk.

Only bcrypt (``$2y$``, ``$2b$``, ``$2a$``; ``htpasswd -B``) is accepted: the older
htpasswd schemes (``{SHA}``, ``$apr1$``, crypt) are fast to brute-force. A file that
fails to parse at startup stops the server; after that, a bad edit is logged and the
previous users stay in force until the file is fixed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from gateway.settings import SettingsError
from gateway.settings.tables import BCRYPT_HASH

log = logging.getLogger("bucketdav.auth")


class HtpasswdError(SettingsError):
    """The file cannot be used; the message names the line and the problem."""


def parse_htpasswd(text: str, path: str) -> dict[str, str]:
    """``{name: bcrypt hash}`` from the lines ``name:hash`` (blank lines, ``#`` comments)."""
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, hashed = line.partition(":")
        if not sep or not name:
            raise HtpasswdError(f"{path} line {number}: expected name:hash")
        if not BCRYPT_HASH.match(hashed):
            raise HtpasswdError(
                f"{path} line {number} (user {name!r}): only bcrypt entries are supported; "
                "recreate it with `htpasswd -B`"
            )
        users[name] = hashed
    return users


class HtpasswdFile:
    """The users of one file; ``users()`` re-reads it when its mtime or size changed."""

    def __init__(
        self, path: str, check_every: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self.check_every = check_every
        self.clock = clock
        self._stamp: tuple[int, int] | None = None
        self._checked = float("-inf")
        self._users: dict[str, str] = {}
        self._load(strict=True)

    def _load(self, strict: bool) -> None:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return
            with open(self.path, encoding="utf-8") as f:
                users = parse_htpasswd(f.read(), self.path)
        except (OSError, UnicodeDecodeError, HtpasswdError) as exc:
            if strict:
                raise HtpasswdError(f"cannot use {self.path}: {exc}") from None
            log.error("keeping the previous users of %s: %s", self.path, exc)
            return
        if self._stamp is not None:
            log.info("re-read %s: %d users", self.path, len(users))
        self._stamp, self._users = stamp, users

    def users(self) -> dict[str, str]:
        now = self.clock()
        if now - self._checked >= self.check_every:
            self._checked = now
            self._load(strict=False)
        return self._users

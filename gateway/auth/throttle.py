"""Slow down password guessing without locking out the people who know their password.

Failures are counted in token buckets: each key may fail ``burst`` times at once, then
once more every ``refill`` seconds; until then its attempts get 429 before any password
check, so a guesser burns neither our CPU (bcrypt) nor many guesses. Two keys count:

* the client address *and* the user name: a guesser at one address (or behind the same
  proxy) slows down only its own attempts at that name; everyone else there logs in;
* the user name alone, across all addresses: many addresses guessing one account share
  one budget. Attempts from an address where that user logged in recently are not held
  to it, so a distributed guesser cannot lock the user out of the places they work from.

Credentials already verified never meet the throttle at all (``Authenticator`` answers
them from its memory first). Names are keyed by a digest, so long names cost no memory,
and each map is bounded: the least recently used keys are forgotten first.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

PER_CLIENT_BURST, PER_CLIENT_REFILL = 10, 6.0  # one name from one address
PER_ACCOUNT_BURST, PER_ACCOUNT_REFILL = 30, 30.0  # one name from every address together
KNOWN_FOR = 7 * 24 * 3600.0  # how long a successful login exempts its address


class FailureThrottle:
    """Token buckets of failures per key, in a bounded map."""

    def __init__(
        self,
        burst: int = PER_CLIENT_BURST,
        refill: float = PER_CLIENT_REFILL,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.refill = refill
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) / self.refill)

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try a password again (0: now)."""
        if key not in self._buckets:
            return 0.0
        tokens = self._tokens(key, self.clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) * self.refill

    def failed(self, key: str) -> None:
        now = self.clock()
        tokens = max(0.0, self._tokens(key, now) - 1.0)
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(frozen=True, slots=True)
class Throttled:
    """A login attempt refused before its password is checked (429)."""

    retry_after: float
    reason: str


def _name_key(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class LoginThrottle:
    """Failed logins per (address, user) and per user; addresses a user logged in from."""

    def __init__(
        self,
        per_client: FailureThrottle | None = None,
        per_account: FailureThrottle | None = None,
        known_for: float = KNOWN_FOR,
        max_known: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_client = (
            per_client if per_client is not None else FailureThrottle(clock=clock)
        )
        self.per_account = per_account if per_account is not None else FailureThrottle(
            PER_ACCOUNT_BURST, PER_ACCOUNT_REFILL, clock=clock
        )
        self.known_for = known_for
        self.max_known = max_known
        self.clock = clock
        self._known: OrderedDict[str, float] = OrderedDict()  # (address, user) -> last login

    @staticmethod
    def _pair(client: str, name: str) -> str:
        return f"{client} {_name_key(name)}"

    def _is_known(self, pair: str) -> bool:
        at = self._known.get(pair)
        return at is not None and self.clock() - at < self.known_for

    def check(self, client: str, name: str) -> Throttled | None:
        """Why an attempt at ``name`` from ``client`` must wait, or None: it may try."""
        pair = self._pair(client, name)
        wait = self.per_client.retry_after(pair)
        if wait > 0:
            return Throttled(wait, "too many failed logins for this user from this address")
        if not self._is_known(pair):
            wait = self.per_account.retry_after(_name_key(name))
            if wait > 0:
                return Throttled(wait, "too many failed logins for this user")
        return None

    def failed(self, client: str, name: str) -> None:
        pair = self._pair(client, name)
        self.per_client.failed(pair)
        if not self._is_known(pair):
            self.per_account.failed(_name_key(name))

    def succeeded(self, client: str, name: str) -> None:
        """A right password: this address's count for the user starts over, and the
        address is known for the user (the per-account budget no longer applies to it)."""
        pair = self._pair(client, name)
        self.per_client.forget(pair)
        self._known[pair] = self.clock()
        self._known.move_to_end(pair)
        while len(self._known) > self.max_known:
            self._known.popitem(last=False)

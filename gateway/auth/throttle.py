"""Slow down password guessing: a token bucket of failures per client address.

Each address may fail ``burst`` times at once; after that one more attempt is allowed
every ``refill`` seconds. Until then its requests get 429 without a password check, so a
guesser burns neither our CPU (bcrypt) nor many guesses. The map is bounded: the least
recently failing addresses are forgotten first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class FailureThrottle:
    def __init__(
        self,
        burst: int = 10,
        refill: float = 6.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.refill = refill
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def _tokens(self, client: str, now: float) -> float:
        tokens, at = self._buckets.get(client, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) / self.refill)

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try a password again (0: now)."""
        if client not in self._buckets:
            return 0.0
        tokens = self._tokens(client, self.clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) * self.refill

    def failed(self, client: str) -> None:
        now = self.clock()
        tokens = max(0.0, self._tokens(client, now) - 1.0)
        self._buckets[client] = (tokens, now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)

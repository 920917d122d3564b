"""A first GET of a key, shared by every open of that key while it is in flight.

The first caller leads: it sends the GET from its own task (a task of its own would make
the GET wait a turn of the event loop behind every other request, going and coming back:
most of the gateway's own latency on small GETs). Callers that come meanwhile follow: they
wait for the leader's answer, each handed its own pin of block 0. A leader that is
cancelled (its client left) takes its GET with it; its followers then open again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.engine.blocks import Block
from gateway.storage.base import ObjectInfo

Opened = tuple[ObjectInfo, Block | None]


class LeaderGone(Exception):
    """The caller sending a first GET was cancelled: those waiting on it open again."""


class Opening:
    def __init__(self) -> None:
        self.waiters = 1  # the leader, and every follower still waiting
        self._result: asyncio.Future[Opened] | None = None  # made when one follows

    def settle(self, opened: Opened | None, error: BaseException | None) -> None:
        """The leader's outcome, told to the followers, if any."""
        result = self._result
        if result is None or result.done():
            return
        if error is not None:
            result.set_exception(error)
            result.exception()  # followers that are gone must not leave it "unretrieved"
        elif opened is not None:
            result.set_result(opened)

    async def follow(self, unpin: Callable[[Block], None]) -> Opened | None:
        """Wait for the leader's first GET; None when the leader was cancelled."""
        if self._result is None:
            self._result = asyncio.get_running_loop().create_future()
        result = self._result
        self.waiters += 1
        try:
            return await asyncio.shield(result)
        except LeaderGone:
            return None
        except asyncio.CancelledError:
            if result.done() and not result.cancelled() and result.exception() is None:
                _, block = result.result()  # the pin handed to this caller
                if block is not None:
                    unpin(block)
            else:
                self.waiters -= 1
            raise

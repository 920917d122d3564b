"""A memory state store that can be switched to "unreachable", as a Redis that went away
looks to its callers: every call raises ``StateUnavailable`` at once."""

from __future__ import annotations

from typing import Any

from gateway.errors import StateUnavailable
from gateway.state import MemoryState

CALLS = frozenset({
    "ping", "acquire", "refresh", "release", "get", "covering", "below", "drop",
    "note_created", "count", "props_get", "props_get_many", "props_patch", "props_copy",
    "props_move",
    "props_delete", "props_copy_prefix", "props_move_prefix", "props_delete_prefix",
})


class FlakyState(MemoryState):
    def __init__(self) -> None:
        super().__init__()
        self.down = False

    @property
    def description(self) -> str:
        return "redis://flaky:6379/0"

    @property
    def available(self) -> bool:
        return not self.down

    def __getattribute__(self, name: str) -> Any:
        if name in CALLS and object.__getattribute__(self, "down"):
            async def unavailable(*args: Any, **kwargs: Any) -> Any:
                raise StateUnavailable("the state store redis://flaky:6379/0 is unavailable")

            return unavailable
        return super().__getattribute__(name)

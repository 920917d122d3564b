"""A point in time as a setting: an RFC 3339 timestamp with its offset (``as_of``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar


class Rfc3339(datetime):
    """``2026-11-30T08:00:00Z`` or with an offset; a TOML date-time works too. A time
    without an offset is refused: it would mean something else on every machine."""

    described: ClassVar[str] = "an RFC 3339 time with its offset, such as 2026-11-30T08:00:00Z"

    def __new__(cls, value: object) -> Rfc3339:
        if isinstance(value, datetime):
            when = value
        elif isinstance(value, str):
            when = datetime.fromisoformat(value.strip().replace("z", "Z"))
        else:
            raise ValueError(f"not a time: {value!r}")
        offset = when.utcoffset()
        if offset is None:
            raise ValueError(f"no UTC offset in {value!r}")
        when = when.astimezone(UTC)
        return super().__new__(cls, when.year, when.month, when.day, when.hour, when.minute,
                               when.second, when.microsecond, tzinfo=UTC)

    def __reduce_ex__(self, protocol: object) -> tuple[Any, ...]:
        # Pickled (for worker processes) as the plain time it stands for.
        return (datetime.fromisoformat, (self.isoformat(),))


# A timezone-aware UTC datetime, read from flags, env and file as an Rfc3339.
Instant = Annotated[datetime, Rfc3339]

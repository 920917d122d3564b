"""What settings fields are made of: value kinds, the error for a malformed value, and
``option()``, which makes a settings field a command-line option as well.

A leaf of the settings package: ``model.py`` declares its fields with these, and
``options.py`` reads them back to build the option table.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, ClassVar

KiB = 1024
MiB = 1024 * KiB


class SettingsError(ValueError):
    """A setting is malformed; the message names the setting and what is wrong."""


class ByteSize(int):
    """A byte count written plainly or with a binary suffix: ``1048576``, ``512K``, ``10GiB``."""

    _UNITS: ClassVar[dict[str, int]] = {"": 1, "k": KiB, "m": MiB, "g": KiB * MiB, "t": MiB * MiB}
    _FORM: ClassVar[re.Pattern[str]] = re.compile(
        r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE
    )

    def __new__(cls, value: object) -> ByteSize:
        if isinstance(value, int) and not isinstance(value, bool):
            return super().__new__(cls, value)
        match = cls._FORM.match(str(value))
        if match is None:
            raise ValueError(f"not a size: {value!r}")
        number, unit = match.groups()
        return super().__new__(cls, int(float(number) * cls._UNITS[unit.lower()]))


# A byte count held as an int, read from flags, env and file as a ByteSize ("5G").
Size = Annotated[int, ByteSize]


class WorkerCount(int):
    """A number of processes, at least 1, or ``auto``: one per CPU this process may use."""

    described: ClassVar[str] = "a number of processes (1 or more) or auto"

    def __new__(cls, value: object) -> WorkerCount:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return super().__new__(cls, cpu_count())
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"not a worker count: {value!r}")
        count = int(value)
        if count < 1:
            raise ValueError(f"not a worker count: {value!r}")
        return super().__new__(cls, count)


def cpu_count() -> int:
    """CPUs this process may run on (a container's CPU set, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


Workers = Annotated[int, WorkerCount]


class TextList(tuple[str, ...]):
    """A list of strings: a TOML array, or one string of comma-separated items (a flag or
    an environment variable), as ``--public-host`` takes them."""

    described: ClassVar[str] = "a list of strings (a TOML array or comma-separated text)"

    def __new__(cls, value: object) -> TextList:
        if isinstance(value, str):
            items = value.split(",")
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            items = list(value)
        else:
            raise ValueError(f"not a list of strings: {value!r}")
        return super().__new__(cls, tuple(i.strip() for i in items if i.strip()))


Texts = Annotated[tuple[str, ...], TextList]


def option(
    help: str,
    *,
    metavar: str | None = None,
    group: str | None = None,
    computed: bool = False,
) -> dict[str, Any]:
    """The field metadata that makes a settings field an option (``--flag``,
    ``BUCKETDAV_*``, TOML key): ``field(default=..., metadata=option("help"))``.

    ``group`` is the ``--help`` section when it is not the one of the field's class.
    ``computed``: when the option is not given, ``build_settings`` works the value out
    (the help says how); the field's default only serves code that builds settings
    directly.
    """
    return {"help": help, "metavar": metavar, "group": group, "computed": computed}

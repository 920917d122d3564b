"""What settings fields are made of: value kinds, the error for a malformed value, and
``option()``, which makes a settings field a command-line option as well.

A leaf of the settings package: ``model.py`` declares its fields with these, and
``options.py`` reads them back to build the option table.
"""

from __future__ import annotations

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

"""The option table: every settings field declared with ``option()`` (``model.py``), with
its flag, env variable and TOML key.

Precedence when merging: flags > environment > config file > defaults.
"""

from __future__ import annotations

import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from gateway.settings.fields import ByteSize, MiB, SettingsError
from gateway.settings.model import (
    AuthSettings,
    EngineSettings,
    LimitSettings,
    OpsSettings,
    Policy,
    ServerSettings,
    StoreSettings,
)

ENV_PREFIX = "BUCKETDAV_"

# The --help sections, in order, and the settings class whose fields each lists (a field
# may name another section in its metadata). Store and policy fields are per share.
SECTIONS: tuple[tuple[str, type[Any]], ...] = (
    ("server", ServerSettings),
    ("security", AuthSettings),
    ("limits", LimitSettings),
    ("operations", OpsSettings),
    ("store", StoreSettings),
    ("policy", Policy),
    ("engine", EngineSettings),
)


@dataclass(frozen=True, slots=True)
class Option:
    """One setting. Each settings dataclass takes the options whose names are its fields;
    ``group`` only says where ``--help`` lists it."""

    name: str  # python name; flag is --name-with-dashes, env BUCKETDAV_NAME, TOML key name
    kind: type
    default: Any
    help: str
    group: str = "server"  # help section: server, security, limits, operations, store, ...
    metavar: str | None = None
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _default_memory_target() -> int:
    """An eighth of physical memory, between 256 MiB and 2 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 512
    return max(256, min(2048, total // MiB // 8))


def _kind(hint: Any) -> tuple[type, tuple[str, ...] | None]:
    """The type a raw value is coerced to, and its choices, from a field's annotation:
    ``X | None`` is X, a Literal of strings is a choice, ``Size`` is a ByteSize."""
    if get_origin(hint) in (Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
    if get_origin(hint) is Annotated:
        return hint.__metadata__[0], None
    if get_origin(hint) is Literal:
        return str, tuple(get_args(hint))
    return hint, None


def _options_of(section: str, cls: type[Any]) -> list[Option]:
    hints = get_type_hints(cls, include_extras=True)
    found = []
    for f in fields(cls):
        if "help" not in f.metadata:
            continue  # not an option: set by the config file's tables or by code
        kind, choices = _kind(hints[f.name])
        found.append(Option(
            name=f.name,
            kind=kind,
            default=None if f.metadata["computed"] else f.default,
            help=f.metadata["help"],
            group=f.metadata["group"] or section,
            metavar=f.metadata["metavar"],
            choices=choices,
        ))
    return found


def _option_table() -> tuple[Option, ...]:
    found = [o for section, cls in SECTIONS for o in _options_of(section, cls)]
    order = [section for section, _ in SECTIONS]
    return tuple(sorted(found, key=lambda o: order.index(o.group)))  # stable: field order


OPTIONS: tuple[Option, ...] = _option_table()
OPTIONS_BY_NAME = {o.name: o for o in OPTIONS}
PER_SHARE = tuple(f.name for cls in (StoreSettings, Policy) for f in fields(cls))


def coerce(option: Option, value: Any, origin: str) -> Any:
    """Turn a raw value (string from env, TOML value, parsed flag) into the option's type."""
    if value is None:
        return None
    kind = option.kind
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{origin}: {option.name} must be true or false, not {value!r}")
    try:
        result = kind(value)
    except (TypeError, ValueError):
        what = "a size such as 512M or 5G" if kind is ByteSize else getattr(
            kind, "described", kind.__name__)
        raise SettingsError(f"{origin}: {option.name} must be {what}, not {value!r}") from None
    if kind in (int, float, ByteSize) and result < 0:
        raise SettingsError(f"{origin}: {option.name} must not be negative")
    if option.choices is not None and result not in option.choices:
        raise SettingsError(
            f"{origin}: {option.name} must be one of {', '.join(option.choices)}, not {value!r}"
        )
    return result


def read_config_file(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"config file {path}: {e}") from None


TABLES = ("source", "share", "user")  # config keys that are not options


def merge_values(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """Resolve each option by precedence: flags > env > config file > default."""
    unknown = sorted(k for k in config if k not in OPTIONS_BY_NAME and k not in TABLES)
    if unknown:
        raise SettingsError(f"config file: unknown setting(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for option in OPTIONS:
        if flags.get(option.name) is not None:
            values[option.name] = coerce(option, flags[option.name], option.flag)
        elif option.env in env:
            values[option.name] = coerce(option, env[option.env], option.env)
        elif option.name in config:
            values[option.name] = coerce(option, config[option.name], "config file")
        else:
            values[option.name] = option.default
    return values


def explicit_names(flags: Mapping[str, Any], env: Mapping[str, str]) -> frozenset[str]:
    """Options set by a flag or an environment variable: they win over ``[[share]]`` keys."""
    return frozenset(
        o.name for o in OPTIONS if flags.get(o.name) is not None or o.env in env
    )

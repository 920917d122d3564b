"""The config file's tables that no flag can express: ``[[share]]`` and ``[[user]]``.

A ``[[share]]`` table mounts one source at a URL path; its store and policy keys override
the top-level values for that share, unless a flag or environment variable sets them for
every share. A ``[[user]]`` table is an account: a bcrypt password hash (never a plain
password), which shares, read-only or read-write, an optional key-prefix jail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.settings.fields import SettingsError
from gateway.settings.model import (
    AuthSettings,
    Grant,
    Policy,
    ShareSettings,
    StoreSettings,
    UserSettings,
    build,
    parse_source,
)
from gateway.settings.options import OPTIONS_BY_NAME, PER_SHARE, coerce


def _component_problem(name: str) -> str | None:
    """Why ``name`` cannot be one path component (the rule of gateway.fs.paths)."""
    if name in ("", ".", ".."):
        return f"{name!r} is not a valid name"
    if any(c in name for c in "\x00\\"):
        return "NUL and backslash are not allowed"
    return None


def parse_mount(text: str) -> str:
    """A mount path as written in ``path = "/photos/"``, normalised to ``/photos/``."""
    if not isinstance(text, str) or not text.startswith("/"):
        raise SettingsError(f"share path {text!r} must start with '/'")
    parts = text.strip("/").split("/") if text.strip("/") else []
    for part in parts:
        problem = _component_problem(part)
        if problem:
            raise SettingsError(f"share path {text!r}: {problem}")
    return "/" + "".join(p + "/" for p in parts)


def _check_mounts(shares: Sequence[ShareSettings]) -> None:
    """Mounts are distinct, none inside another (so each URL has exactly one share)."""
    parts = [tuple(s.name.split("/")) if s.name else () for s in shares]
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            if a == b:
                raise SettingsError(f"two shares are mounted at {shares[i].mount}")
            short, long_ = sorted((a, b), key=len)
            if long_[: len(short)] == short:
                outer = "/" + "".join(p + "/" for p in short)
                inner = "/" + "".join(p + "/" for p in long_)
                raise SettingsError(
                    f"share {inner} lies inside share {outer}: mounts must not nest"
                )


def _check_filters(share: ShareSettings) -> ShareSettings:
    """A filter that cannot compile stops startup, naming the share and the setting."""
    where = f"share {share.mount}"
    policy = share.policy
    if policy.filter is not None:
        try:
            re.compile(policy.filter)
        except re.error as e:
            raise SettingsError(f"{where}: filter {policy.filter!r} is not a regular "
                                f"expression: {e}") from None
    for name, globs in (("include", policy.include), ("exclude", policy.exclude)):
        if globs is not None and any(not g.strip("/") for g in globs):
            raise SettingsError(f"{where}: {name} has an empty glob")
    if policy.quota is not None and policy.quota < 1:
        raise SettingsError(f"{where}: quota must be at least 1 byte")
    return share


def _share_from_table(
    table: Mapping[str, Any], values: Mapping[str, Any], explicit: frozenset[str], index: int
) -> ShareSettings:
    where = f"config file: [[share]] #{index + 1}"
    if not isinstance(table, Mapping):
        raise SettingsError(f"{where} must be a table")
    unknown = sorted(k for k in table if k not in ("path", "source") and k not in PER_SHARE)
    if unknown:
        hint = ""
        if any(k in OPTIONS_BY_NAME for k in unknown):
            hint = " (in TOML, top-level keys must come before the first [[share]] table)"
        raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)}{hint}")
    if "path" not in table or "source" not in table:
        raise SettingsError(f"{where} needs both path and source")
    mount = parse_mount(table["path"])
    own = dict(values)
    for name in PER_SHARE:
        if name in table and name not in explicit:
            own[name] = coerce(OPTIONS_BY_NAME[name], table[name], f"{where} ({mount})")
    return _check_filters(ShareSettings(
        mount=mount,
        source=parse_source(str(table["source"])),
        store=build(StoreSettings, own),
        policy=build(Policy, own),
    ))


def build_shares(
    source: str | None,
    tables: Any,
    values: Mapping[str, Any],
    explicit: frozenset[str] = frozenset(),
) -> tuple[ShareSettings, ...]:
    """One share at ``/`` for a SOURCE, or one per ``[[share]]`` table."""
    if tables is None:
        return (
            _check_filters(ShareSettings(
                mount="/",
                source=parse_source(source),
                store=build(StoreSettings, values),
                policy=build(Policy, values),
            )),
        )
    if source:
        raise SettingsError(
            "give either a SOURCE (argument, BUCKETDAV_SOURCE or `source =`) or [[share]] "
            "tables in the config file, not both"
        )
    if not isinstance(tables, list) or not tables:
        raise SettingsError("config file: `share` must be a list of [[share]] tables")
    shares = tuple(_share_from_table(t, values, explicit, i) for i, t in enumerate(tables))
    _check_mounts(shares)
    return shares


# ---- [[user]] tables --------------------------------------------------------------------

BCRYPT_HASH = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
USER_KEYS = ("name", "password_hash", "password", "shares", "read_only", "jail")


def parse_jail(text: Any, where: str) -> str:
    """A key prefix inside a share: ``home/alice`` -> ``home/alice/``."""
    if not isinstance(text, str):
        raise SettingsError(f"{where}: jail must be a string")
    body = text.strip("/")
    if not body:
        return ""
    for part in body.split("/"):
        problem = _component_problem(part)
        if problem:
            raise SettingsError(f"{where}: jail {text!r}: {problem}")
    return body + "/"


def _access(value: Any, where: str) -> bool:
    """``"read-only"`` / ``"read-write"`` -> read_only."""
    if value in ("read-only", "ro"):
        return True
    if value in ("read-write", "rw"):
        return False
    raise SettingsError(f"{where}: access must be \"read-only\" or \"read-write\", not {value!r}")


def _grants(table: Mapping[str, Any], where: str, names: Sequence[str]) -> tuple[Grant, ...]:
    read_only = table.get("read_only", False)
    if not isinstance(read_only, bool):
        raise SettingsError(f"{where}: read_only must be true or false")
    jail = parse_jail(table.get("jail", ""), where)
    spec = table.get("shares", ["*"])
    grants: list[Grant] = []
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, list):
        grants = [Grant(str(s).strip("/"), read_only, jail) for s in spec]
    elif isinstance(spec, Mapping):
        for share, access in spec.items():
            if isinstance(access, Mapping):
                extra = sorted(set(access) - {"access", "jail"})
                if extra:
                    raise SettingsError(f"{where}: shares.{share}: unknown key(s) {extra}")
                own = f"{where}: shares.{share}"
                ro = _access(access["access"], own) if "access" in access else read_only
                own_jail = parse_jail(access.get("jail", jail), own)
                grants.append(Grant(share.strip("/"), ro, own_jail))
            else:
                grants.append(Grant(share.strip("/"), _access(access, f"{where}: {share}"), jail))
    else:
        raise SettingsError(f"{where}: shares must be a list of share names or a table")
    for grant in grants:
        if grant.share != "*" and grant.share not in names:
            known = ", ".join(repr(n) if n else "'/'" for n in names)
            raise SettingsError(f"{where}: no share named {grant.share!r} (shares: {known})")
    return tuple(grants)


def _user_from_table(table: Any, index: int, names: Sequence[str]) -> UserSettings:
    where = f"config file: [[user]] #{index + 1}"
    if not isinstance(table, Mapping):
        raise SettingsError(f"{where} must be a table")
    name = table.get("name")
    if not isinstance(name, str) or not name or ":" in name or not name.isprintable():
        raise SettingsError(f"{where}: name must be a non-empty string without ':'")
    where = f"config file: user {name!r}"
    if "password" in table:
        raise SettingsError(
            f"{where}: plain-text passwords are not accepted (anyone who reads the config "
            "would know them); put a bcrypt hash in password_hash instead, made with "
            "`htpasswd -nB NAME` or `python -c \"import bcrypt; "
            "print(bcrypt.hashpw(b'PASSWORD', bcrypt.gensalt()).decode())\"`"
        )
    unknown = sorted(k for k in table if k not in USER_KEYS)
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)}")
    password_hash = table.get("password_hash")
    if password_hash is not None and (
        not isinstance(password_hash, str) or not BCRYPT_HASH.match(password_hash)
    ):
        raise SettingsError(
            f"{where}: password_hash is not a bcrypt hash ($2b$/$2y$...); plain-text "
            "passwords are not accepted"
        )
    return UserSettings(name, password_hash, _grants(table, where, names))


def build_auth(values: Mapping[str, Any], tables: Any, names: Sequence[str]) -> AuthSettings:
    if tables is None:
        tables = []
    if not isinstance(tables, list):
        raise SettingsError("config file: `user` must be a list of [[user]] tables")
    users = tuple(_user_from_table(t, i, names) for i, t in enumerate(tables))
    seen: set[str] = set()
    for user in users:
        if user.name in seen:
            raise SettingsError(f"config file: user {user.name!r} is defined twice")
        seen.add(user.name)
    auth: AuthSettings = build(AuthSettings, {**values, "users": users})
    return auth

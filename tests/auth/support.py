"""Credentials for tests: cheap bcrypt hashes and Basic authorization headers."""

from __future__ import annotations

import base64

import bcrypt


def bcrypt_hash(password: str) -> str:
    """A cheap (cost 4) bcrypt hash: tests check the logic, not the cost."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


def basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}

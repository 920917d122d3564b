"""Users and their rights: pure decisions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.settings import ALL_SHARES, Grant

ANONYMOUS = "anonymous"  # how logs, refusals and locks name a user who gave no name

# Every method that changes something (LOCK and UNLOCK included: a read-only user taking
# locks would block writers). Read-only users get 403 for these before any handler runs.
WRITE_METHODS = frozenset(
    {"PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPPATCH", "LOCK", "UNLOCK", "POST", "PATCH"}
)


@dataclass(frozen=True, slots=True)
class User:
    """The principal of one request, attached by the auth middleware."""

    name: str  # "" for anonymous access
    grants: tuple[Grant, ...] = ALL_SHARES

    @property
    def anonymous(self) -> bool:
        return self.name == ""

    @property
    def label(self) -> str:
        """How logs, refusals and locks name the user."""
        return self.name or ANONYMOUS

    def grant(self, share: str) -> Grant | None:
        """The grant for the share named ``share``: its own, else a ``"*"`` one."""
        for grant in self.grants:
            if grant.share == share:
                return grant
        for grant in self.grants:
            if grant.share == "*":
                return grant
        return None

    def visible(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """The shares among ``names`` this user may see."""
        return tuple(n for n in names if self.grant(n) is not None)


def anonymous_user(read_only: bool) -> User:
    return User("", (Grant("*", read_only),))


def refusal(user: User, share: str, method: str) -> str | None:
    """Why ``user`` may not send ``method`` to the share named ``share``, or None."""
    shown = "/" + share + "/" if share else "/"
    grant = user.grant(share)
    if grant is None:
        return f"{user.label} has no access to {shown}"
    if grant.read_only and method in WRITE_METHODS:
        return f"{user.label} may only read {shown} ({method} refused)"
    return None

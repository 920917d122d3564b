"""The share's policy as a table: each operation under each flag, allowed (None) or the
refusal that names the flag which would allow it."""

from __future__ import annotations

import pytest

from gateway.fs import policy
from gateway.settings import Policy

DEFAULT = Policy()
READ_ONLY = Policy(read_only=True)
EVERYTHING = Policy(allow_overwrite=True, allow_delete=True, allow_rename=True)
READ_ONLY_WINS = Policy(
    read_only=True, allow_overwrite=True, allow_delete=True, allow_rename=True
)


@pytest.mark.parametrize(
    ("share", "size", "under_lock", "refusal"),
    [
        (DEFAULT, 10, False, "--allow-overwrite"),
        (DEFAULT, 0, False, None),  # a zero-byte placeholder may be replaced
        (DEFAULT, 10, True, None),  # created under a lock whose token was sent
        (Policy(allow_overwrite=True), 10, False, None),
        (Policy(allow_delete=True, allow_rename=True), 10, False, "--allow-overwrite"),
        (READ_ONLY, 0, False, "--read-only"),
        (READ_ONLY_WINS, 10, True, "--read-only"),
    ],
)
def test_may_overwrite(share: Policy, size: int, under_lock: bool, refusal: str | None) -> None:
    result = policy.may_overwrite(share, size, under_lock)
    assert result is None if refusal is None else refusal in (result or "")


@pytest.mark.parametrize(
    ("share", "refusal"),
    [
        (DEFAULT, "--allow-delete"),
        (Policy(allow_overwrite=True, allow_rename=True), "--allow-delete"),
        (Policy(allow_delete=True), None),
        (READ_ONLY_WINS, "--read-only"),
    ],
)
def test_may_delete_and_replace_a_collection(share: Policy, refusal: str | None) -> None:
    for decision in (policy.may_delete(share), policy.may_replace_collection(share)):
        assert decision is None if refusal is None else refusal in (decision or "")


@pytest.mark.parametrize(
    ("share", "is_dir", "empty", "refusal"),
    [
        (DEFAULT, False, True, None),  # a zero-byte object moves in O(1)
        (DEFAULT, True, True, None),  # an empty collection moves in O(1)
        (DEFAULT, False, False, "--allow-rename"),
        (DEFAULT, True, False, "--allow-rename"),
        (Policy(allow_rename=True), False, False, None),
        (Policy(allow_rename=True), True, False, None),
        (Policy(allow_overwrite=True, allow_delete=True), False, False, "--allow-rename"),
        (READ_ONLY, False, True, "--read-only"),
        (READ_ONLY_WINS, True, False, "--read-only"),
    ],
)
def test_may_rename(share: Policy, is_dir: bool, empty: bool, refusal: str | None) -> None:
    result = policy.may_rename(share, is_dir, empty)
    assert result is None if refusal is None else refusal in (result or "")


@pytest.mark.parametrize(
    ("share", "refusal"),
    [
        (DEFAULT, None),
        (EVERYTHING, None),
        (READ_ONLY, "--read-only"),
        (READ_ONLY_WINS, "--read-only"),
    ],
)
def test_may_write_and_create(share: Policy, refusal: str | None) -> None:
    for decision in (policy.may_write(share), policy.may_create(share)):
        assert decision is None if refusal is None else refusal in (decision or "")


def test_refusals_are_one_line_and_say_why() -> None:
    messages = [
        policy.READ_ONLY,
        policy.OVERWRITE,
        policy.DELETE,
        policy.DELETE_TARGET,
        policy.RENAME_FILE,
        policy.RENAME_TREE,
    ]
    for message in messages:
        assert "\n" not in message
        assert "--" in message  # names the flag
    assert "not atomic" in policy.RENAME_FILE
    assert "not atomic" in policy.RENAME_TREE

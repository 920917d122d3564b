"""Create-only writes on a local folder whose file system has no hard links.

LocalStore commits a create with ``os.link`` (which fails if the name exists). vfat, some
FUSE and network mounts refuse hard links (EPERM, ENOTSUP): a create must still succeed
there, and still refuse a name that exists, with a rename that refuses to replace (Linux
``renameat2(RENAME_NOREPLACE)``), else a look then a rename (atomic only under the engine's
write guard). The refusal of ``os.link`` is simulated; the renames are real.
"""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from gateway.errors import Exists
from gateway.storage import local
from gateway.storage.base import ObjectInfo
from gateway.storage.local import LocalStore


@pytest.fixture(params=["renameat2", "look-then-rename"])
def no_hard_links(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    def refuse(src: object, dst: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(local.os, "link", refuse)
    if request.param == "look-then-rename":
        monkeypatch.setattr(local, "_renameat2", None)
    else:
        assert local._renameat2 is not None, "this Linux libc has renameat2"
    return str(request.param)


def leftovers(root: Path) -> list[str]:
    side = root / local.SIDE
    return sorted(p.name for p in side.iterdir()) if side.is_dir() else []


async def test_a_create_works_and_a_second_one_is_refused(no_hard_links: str,
                                                         tmp_path: Path) -> None:
    store = LocalStore(tmp_path, create=True)
    await store.put("a/new.txt", b"first", if_none_match=True)
    with pytest.raises(Exists):
        await store.put("a/new.txt", b"second", if_none_match=True)
    upload_id = await store.create_upload("a/new.txt")
    part = await store.upload_part("a/new.txt", upload_id, 1, b"third")
    with pytest.raises(Exists):
        await store.complete_upload("a/new.txt", upload_id, [part], if_none_match=True)
    with pytest.raises(Exists):
        await store.copy("a/new.txt", "a/new.txt", if_none_match=True)
    assert (tmp_path / "a" / "new.txt").read_bytes() == b"first"
    await store.copy("a/new.txt", "a/copy.txt", if_none_match=True)
    assert (tmp_path / "a" / "copy.txt").read_bytes() == b"first"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("no_hard_links", ["renameat2"], indirect=True)
async def test_concurrent_creators_one_wins(no_hard_links: str, tmp_path: Path) -> None:
    """From several threads at once, atomic through renameat2. (The look-then-rename
    fallback is atomic only under the engine's write guard, which the store alone lacks.)"""
    store = LocalStore(tmp_path, create=True)
    for i in range(10):
        key = f"race-{i}"
        bodies = [f"{key} from {j}".encode() for j in range(6)]
        results = await asyncio.gather(
            *(store.put(key, body, if_none_match=True) for body in bodies),
            return_exceptions=True,
        )
        won = [j for j, r in enumerate(results) if isinstance(r, ObjectInfo)]
        assert len(won) == 1, results
        assert all(isinstance(r, Exists) for j, r in enumerate(results) if j not in won)
        assert (tmp_path / key).read_bytes() == bodies[won[0]]
    assert leftovers(tmp_path) == []

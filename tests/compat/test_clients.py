"""Real WebDAV clients mount and use bucketdav over moto: davfs2, rclone, cadaver.

Each test starts its own gateway on a fresh bucket, drives the client as a person would,
and checks the result both through the client and through the bucket itself.
"""

from __future__ import annotations

import contextlib
import filecmp
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.conftest import StartGateway, require_tool
from tests.gatewayproc import GatewayProcess


def make_tree(root: Path) -> dict[str, bytes]:
    """A small tree with nested folders, an empty file, odd names and a 3 MiB file."""
    files = {
        "readme.txt": b"hello from a client\n",
        "empty.bin": b"",
        "docs/report final.txt": "naïve café ☕\n".encode(),
        "docs/nested/deep/leaf.dat": bytes(range(256)) * 64,
        "media/big.bin": hashlib.shake_256(b"big").digest(3 * 1024 * 1024),
        "odd/plus+and&hash#.txt": b"odd names survive\n",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def fetch(gateway: GatewayProcess, name: str) -> bytes:
    from urllib.parse import quote

    url = gateway.url + "/" + "/".join(quote(p, safe="") for p in name.split("/"))
    out = subprocess.run(["curl", "-s", "--fail", url], capture_output=True, timeout=60)
    assert out.returncode == 0, f"GET {name} failed: {out.returncode}"
    return out.stdout


# ---- davfs2 -------------------------------------------------------------------------------


@contextlib.contextmanager
def davfs_mount(url: str, workdir: Path) -> Iterator[Path]:
    mount_davfs = require_tool("mount.davfs")
    mnt = workdir / "mnt"
    mnt.mkdir(parents=True)
    # mount.davfs drops to its own user, which cannot enter pytest's private tmp folders.
    cache = Path(tempfile.mkdtemp(prefix="davfs-cache-"))
    cache.chmod(0o777)
    conf = workdir / "davfs2.conf"
    # buf_size 64: needed by this kernel's FUSE; delay_upload 0: upload on close so the
    # test sees the bucket change when the file is closed.
    conf.write_text(
        f"buf_size 64\nask_auth 0\ndelay_upload 0\nuse_locks 1\ncache_dir {cache}\n"
        "gui_optimize 0\n",
        "utf-8",
    )
    proc = subprocess.run(
        [mount_davfs, url + "/", str(mnt), "-o", f"conf={conf},rw"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"mount.davfs failed: {proc.stdout}{proc.stderr}"
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, timeout=120)
        for _ in range(100):  # umount.davfs returns before mount.davfs has exited
            if not os.path.ismount(mnt):
                break
            time.sleep(0.1)
        shutil.rmtree(cache, ignore_errors=True)


@pytest.mark.compat
def test_davfs2_copies_a_tree_in_reads_it_back_and_removes_it(
    moto_gateway: StartGateway, tmp_path: Path
) -> None:
    gateway = moto_gateway("--allow-delete")
    source = tmp_path / "source"
    files = make_tree(source)
    with davfs_mount(gateway.url, tmp_path / "dav") as mnt:
        subprocess.run(["cp", "-r", str(source), str(mnt / "tree")], check=True, timeout=300)
        (mnt / "made-by-mkdir").mkdir()
    # After unmount every upload is done: the bucket holds the tree.
    for name, data in files.items():
        assert fetch(gateway, f"tree/{name}") == data, name
    with davfs_mount(gateway.url, tmp_path / "dav2") as mnt:
        cmp = filecmp.dircmp(source, mnt / "tree")
        assert not cmp.left_only and not cmp.right_only and not cmp.diff_files
        for name, data in files.items():
            assert (mnt / "tree" / name).read_bytes() == data, name
        assert (mnt / "made-by-mkdir").is_dir()
        (mnt / "tree" / "readme.txt").unlink()
        subprocess.run(["rm", "-r", str(mnt / "tree" / "docs")], check=True, timeout=120)
        (mnt / "made-by-mkdir").rmdir()
    listing = subprocess.run(
        ["curl", "-s", gateway.url + "/tree/?format=json"], capture_output=True, timeout=60
    ).stdout
    assert b"readme.txt" not in listing and b'"docs"' not in listing
    assert b"media" in listing


# ---- rclone -------------------------------------------------------------------------------


def rclone(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_tool("rclone")
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    return subprocess.run(
        [binary, "--config", "/dev/null", *args],
        capture_output=True, text=True, timeout=300, env=env,
    )


@pytest.mark.compat
def test_rclone_copies_a_tree_in_and_back_and_checks_it(
    moto_gateway: StartGateway, tmp_path: Path
) -> None:
    gateway = moto_gateway()
    source = tmp_path / "source"
    make_tree(source)
    remote = f":webdav,url='{gateway.url}/',vendor=other:tree"
    copied = rclone("copy", str(source), remote)
    assert copied.returncode == 0, copied.stderr
    checked = rclone("check", str(source), remote)
    assert checked.returncode == 0, checked.stderr
    back = tmp_path / "back"
    returned = rclone("copy", remote, str(back))
    assert returned.returncode == 0, returned.stderr
    cmp = filecmp.dircmp(source, back)
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files
    for sub in ("docs", "docs/nested/deep", "media", "odd"):
        inner = filecmp.dircmp(source / sub, back / sub)
        assert not inner.left_only and not inner.right_only and not inner.diff_files, sub


# ---- cadaver ------------------------------------------------------------------------------


def cadaver(url: str, commands: str, cwd: Path) -> str:
    """cadaver always exits 0: callers must read its output."""
    binary = require_tool("cadaver")
    proc = subprocess.run(
        [binary, url + "/"], input=commands + "\nquit\n", capture_output=True, text=True,
        timeout=120, cwd=cwd,
    )
    return proc.stdout + proc.stderr


@pytest.mark.compat
def test_cadaver_lists_puts_and_gets(moto_gateway: StartGateway, tmp_path: Path) -> None:
    gateway = moto_gateway()
    (tmp_path / "upload.txt").write_bytes(b"sent by cadaver\n")
    out = cadaver(
        gateway.url, "mkcol folder\nput upload.txt folder/upload.txt\nls folder", tmp_path
    )
    assert "succeeded" in out.lower()
    assert "upload.txt" in out
    assert fetch(gateway, "folder/upload.txt") == b"sent by cadaver\n"
    out = cadaver(gateway.url, "get folder/upload.txt fetched.txt\nls", tmp_path)
    assert (tmp_path / "fetched.txt").read_bytes() == b"sent by cadaver\n"
    assert "folder" in out
    refused = cadaver(gateway.url, "delete folder/upload.txt", tmp_path)
    assert "failed" in refused and "403 Forbidden" in refused  # cadaver hides the body
    assert fetch(gateway, "folder/upload.txt") == b"sent by cadaver\n"

"""A local folder as an object store.

Keys are relative paths under the root; a directory stands for the ``dir/`` marker
object. Writes go to a temporary file inside ``.bucketdav/`` under the root (same
filesystem) and are renamed into place when complete, so a partial file is never
visible. A create-only write (``if_none_match``: PUT, completed upload or copy) is a hard
link of the temporary file instead (on a file system without hard links, a rename that
refuses to replace), which fails if the name exists: of two processes or threads creating
one name, exactly one succeeds. No key can name a path outside the root:
keys are checked component by component and the resolved path must stay under the
resolved root (symlinks included).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

from gateway.errors import AccessDenied, Conflict, Exists, InvalidPath, NotFound, ObjectChanged
from gateway.storage.base import GetResult, ListPage, ObjectInfo, UploadPart
from gateway.storage.mtime import format_mtime, parse_mtime
from gateway.storage.noversions import NoVersions

CHUNK = 256 * 1024
SIDE = ".bucketdav"  # temp files and multipart parts; never listed


class NameTooLong(InvalidPath):
    """A name or path longer than the folder's file system holds (ENAMETOOLONG)."""


def _limit(root: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(root, name)
    except (OSError, ValueError):
        return default


# os.link failing with these means the file system has no hard links (vfat, some FUSE and
# network mounts), not that anything is wrong with the name.
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})
_RENAME_NOREPLACE = 1  # linux/fs.h
_AT_FDCWD = -100


def _load_renameat2() -> Callable[..., int] | None:
    try:
        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # not Linux, or a libc without it
        return None
    return function


_renameat2 = _load_renameat2()


def _rename_noreplace(temp: Path, path: Path) -> bool:
    """Rename ``temp`` to ``path`` unless ``path`` exists (FileExistsError), atomically;
    False if this system or file system cannot."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(temp), _AT_FDCWD, os.fsencode(path),
                  _RENAME_NOREPLACE) == 0:
        return True
    code = ctypes.get_errno()
    if code == errno.EEXIST:
        raise FileExistsError(code, os.strerror(code), str(path))
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(path))


def _place_new(temp: Path, path: Path) -> None:
    """Give ``temp`` the name ``path`` only if that name is free (FileExistsError if not),
    so of several creators exactly one succeeds: a hard link where the file system has them,
    else a rename that refuses to replace (Linux ``renameat2``), else a look and a rename,
    which is atomic only inside this process (the engine's write guard)."""
    try:
        os.link(temp, path)
        return
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in _NO_HARD_LINKS:
            raise
    if _rename_noreplace(temp, path):
        return
    if os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    os.replace(temp, path)


def _set_mtime(path: Path, mtime: float | None) -> None:
    """A file's time is its mtime: set on the temporary file, before it gets its name,
    so the object is never seen with another time (or another ETag)."""
    if mtime is not None:
        os.utime(path, ns=(round(mtime * 1e9),) * 2)


def _etag(st: os.stat_result) -> str:
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=0 if key.endswith("/") else st.st_size,
        etag=_etag(st),
        last_modified=datetime.fromtimestamp(int(st.st_mtime), UTC),
    )


class LocalStore(NoVersions):
    native_mtime = True  # a file's time is its own mtime (os.utime), listed with it
    no_versions = "a local folder keeps no object versions (versions need a versioned S3 bucket)"

    def __init__(self, root: str | Path, create: bool = False) -> None:
        path = Path(root)
        if create:
            path.mkdir(parents=True, exist_ok=True)
        self.root = path.resolve()
        self._side = self.root / SIDE
        # Checked before any system call, so the OS never answers ENAMETOOLONG.
        self._name_max = _limit(self.root, "PC_NAME_MAX", 255)
        self._path_max = _limit(self.root, "PC_PATH_MAX", 4096)

    @property
    def description(self) -> str:
        return f"local folder {self.root}"

    # ---- path safety ----------------------------------------------------------------
    def _path(self, key: str) -> Path:
        """The filesystem path for a key, refusing anything that could leave the root."""
        body = key[:-1] if key.endswith("/") else key
        comps = body.split("/") if body else []
        for c in comps:
            if c in ("", ".", "..") or "\x00" in c or "\\" in c:
                raise InvalidPath(f"invalid key {key!r}")
        if comps and comps[0] == SIDE:
            raise InvalidPath(f"{SIDE} is reserved")
        for c in comps:
            if len(os.fsencode(c)) > self._name_max:
                raise NameTooLong(
                    f"a name of {len(os.fsencode(c))} bytes is too long for this share's "
                    f"folder: its file system holds names of up to {self._name_max} bytes"
                )
        path = self.root.joinpath(*comps)
        if len(os.fsencode(path)) >= self._path_max:
            raise NameTooLong(
                f"the path is too long for this share's folder: {len(os.fsencode(path))} "
                f"bytes on disk, its file system holds up to {self._path_max - 1} bytes"
            )
        # A symlink inside the root must not lead out of it.
        real = Path(os.path.realpath(path))
        if real != self.root and self.root not in real.parents:
            raise InvalidPath(f"key {key!r} leads outside the share")
        return path

    # ---- sync helpers, run in a thread -----------------------------------------------
    def _stat(self, key: str) -> os.stat_result:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no object {key!r}") from None
        except PermissionError:
            raise AccessDenied(f"cannot read {key!r}") from None
        is_dir = os.path.isdir(path)
        if is_dir != key.endswith("/") or (key == "" and not is_dir):
            raise NotFound(f"no object {key!r}")
        return st

    def _walk(self, prefix: str, delimiter: str | None) -> list[tuple[str, os.stat_result | None]]:
        """Every key under prefix in S3 order; directories as ``name/`` (stat None when
        they are common prefixes)."""
        slash = prefix.rfind("/")
        base_key, name_prefix = prefix[: slash + 1], prefix[slash + 1 :]
        try:
            base = self._path(base_key)
        except NameTooLong:
            raise
        except InvalidPath:
            return []
        out: list[tuple[str, os.stat_result | None]] = []
        if name_prefix == "" and base_key and base.is_dir():
            out.append((base_key, base.stat()))  # the directory's own marker
        try:
            entries = list(os.scandir(base))
        except (FileNotFoundError, NotADirectoryError):
            return out
        for entry in entries:
            if entry.name.startswith(name_prefix) is False:
                continue
            if not base_key and entry.name == SIDE:
                continue
            key = base_key + entry.name
            try:
                if entry.is_dir():
                    if delimiter:
                        out.append((key + "/", None))
                    else:
                        out.extend(self._walk(key + "/", None))
                elif entry.is_file():
                    out.append((key, entry.stat()))
            except OSError:
                continue
        out.sort(key=lambda item: item[0])
        return out

    def _list(
        self, prefix: str, delimiter: str | None, token: str | None, max_keys: int
    ) -> ListPage:
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        items = [it for it in self._walk(prefix, delimiter) if token is None or it[0] > token]
        for key, st in items[:max_keys]:
            if st is None:
                prefixes.append(key)
            else:
                objects.append(_info(key, st))
        more = len(items) > max_keys
        return ListPage(tuple(objects), tuple(prefixes), items[max_keys - 1][0] if more else None)

    def _temp(self) -> Path:
        self._side.mkdir(exist_ok=True)
        return self._side / f"tmp-{uuid.uuid4().hex}"

    def _commit(self, temp: Path, key: str, if_none_match: bool) -> ObjectInfo:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            temp.unlink(missing_ok=True)
            raise Conflict(f"a parent of {key!r} is a file") from None
        try:
            if path.is_dir():
                raise Conflict(f"{key!r} is a directory")
            if if_none_match:
                try:
                    _place_new(temp, path)
                except FileExistsError:
                    raise Exists(f"{key!r} exists") from None
            else:
                os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        return _info(key, path.stat())

    def _put(self, key: str, data: bytes, if_none_match: bool, mtime: float | None = None
             ) -> ObjectInfo:
        if key.endswith("/"):
            path = self._path(key)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.mkdir(exist_ok=not if_none_match)  # create-only: mkdir is atomic
            except FileExistsError:
                if if_none_match and path.is_dir():
                    raise Exists(f"{key!r} exists") from None
                raise Conflict(f"{key!r} is a file") from None
            except NotADirectoryError:
                raise Conflict(f"{key!r} is a file") from None
            return _info(key, path.stat())
        self._path(key)
        temp = self._temp()
        temp.write_bytes(data)
        _set_mtime(temp, mtime)
        return self._commit(temp, key, if_none_match)

    def _upload_dir(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise NotFound("no such upload")
        return self._side / f"upload-{upload_id}"

    def _complete(
        self, key: str, upload_id: str, parts: list[UploadPart], if_none_match: bool
    ) -> ObjectInfo:
        folder = self._upload_dir(upload_id)
        if not folder.is_dir():
            raise NotFound("no such upload")
        temp = self._temp()
        with open(temp, "wb") as out:
            for part in sorted(parts, key=lambda p: p.number):
                with open(folder / str(part.number), "rb") as f:
                    shutil.copyfileobj(f, out, CHUNK)
        try:
            mtime = parse_mtime((folder / "mtime").read_text("ascii"))
        except OSError:
            mtime = None  # none was given at create_upload
        _set_mtime(temp, mtime)
        shutil.rmtree(folder, ignore_errors=True)
        return self._commit(temp, key, if_none_match)

    def _delete(self, key: str) -> None:
        path = self._path(key)
        try:
            if key.endswith("/"):
                path.rmdir()
            else:
                path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass
        except OSError as e:
            if key.endswith("/") and e.errno in (39, 66):  # ENOTEMPTY: S3 would keep the children
                return
            raise

    # ---- protocol -----------------------------------------------------------------
    async def check(self) -> None:
        if not self.root.is_dir():
            raise NotFound(f"{self.root} is not a directory")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise AccessDenied(f"cannot read {self.root}")

    async def head(self, key: str) -> ObjectInfo:
        st = await asyncio.to_thread(self._stat, key)
        return _info(key, st)

    async def get(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        if_match: str | None = None,
    ) -> GetResult:
        path = self._path(key)
        if key.endswith("/"):
            st = await asyncio.to_thread(self._stat, key)
            return GetResult(_info(key, st), 0, 0, _empty())
        try:
            f = await asyncio.to_thread(open, path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"no object {key!r}") from None
        except PermissionError:
            raise AccessDenied(f"cannot read {key!r}") from None
        st = os.fstat(f.fileno())
        info = _info(key, st)
        if if_match is not None and if_match != info.etag:
            f.close()
            raise ObjectChanged(f"{key!r} changed")
        lo = 0 if start is None else min(start, st.st_size)
        hi = st.st_size if end is None else min(end, st.st_size)

        async def body() -> AsyncIterator[bytes]:
            try:
                await asyncio.to_thread(f.seek, lo)
                left = hi - lo
                while left > 0:
                    piece = await asyncio.to_thread(f.read, min(CHUNK, left))
                    if not piece:
                        raise ObjectChanged(f"{key!r} shrank during the read")
                    left -= len(piece)
                    yield piece
            finally:
                f.close()

        async def close() -> None:
            f.close()

        return GetResult(info, lo, hi, body(), close)

    async def list_page(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        return await asyncio.to_thread(self._list, prefix, delimiter, token, max_keys)

    async def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        if_none_match: bool = False,
        mtime: float | None = None,
    ) -> ObjectInfo:
        return await asyncio.to_thread(self._put, key, data, if_none_match, mtime)

    async def create_upload(
        self, key: str, content_type: str | None = None, mtime: float | None = None
    ) -> str:
        self._path(key)
        upload_id = uuid.uuid4().hex
        folder = self._upload_dir(upload_id)
        await asyncio.to_thread(folder.mkdir, parents=True)
        (folder / "key").write_text(key, "utf-8")
        if mtime is not None:
            (folder / "mtime").write_text(format_mtime(mtime), "ascii")
        return upload_id

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> UploadPart:
        folder = self._upload_dir(upload_id)
        if not folder.is_dir():
            raise NotFound("no such upload")
        await asyncio.to_thread((folder / str(number)).write_bytes, data)
        return UploadPart(number, f'"{number}"')

    async def complete_upload(
        self, key: str, upload_id: str, parts: list[UploadPart], if_none_match: bool = False
    ) -> ObjectInfo:
        return await asyncio.to_thread(self._complete, key, upload_id, parts, if_none_match)

    async def abort_upload(self, key: str, upload_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self._upload_dir(upload_id), True)

    async def list_uploads(self, prefix: str) -> list[tuple[str, str]]:
        def scan() -> list[tuple[str, str]]:
            found = []
            for folder in self._side.glob("upload-*") if self._side.is_dir() else []:
                try:
                    key = (folder / "key").read_text("utf-8")
                except OSError:
                    continue
                if key.startswith(prefix):
                    found.append((key, folder.name.removeprefix("upload-")))
            return found

        return await asyncio.to_thread(scan)

    async def copy(self, src: str, dst: str, if_none_match: bool = False) -> ObjectInfo:
        def run() -> ObjectInfo:
            source = self._path(src)
            if key_is_dir(src):
                return self._put(dst, b"", if_none_match)
            self._path(dst)
            temp = self._temp()
            try:
                shutil.copyfile(source, temp)
            except FileNotFoundError:
                temp.unlink(missing_ok=True)
                raise NotFound(f"no object {src!r}") from None
            return self._commit(temp, dst, if_none_match)

        return await asyncio.to_thread(run)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    async def delete_many(self, keys: list[str]) -> dict[str, str]:
        def run() -> dict[str, str]:
            failed: dict[str, str] = {}
            # Children before parents, so directory markers can go once empty.
            for key in sorted(keys, reverse=True):
                try:
                    self._delete(key)
                except (OSError, InvalidPath) as e:
                    failed[key] = str(e)
            return failed

        return await asyncio.to_thread(run)

    async def close(self) -> None:
        return None


def key_is_dir(key: str) -> bool:
    return key.endswith("/")


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator

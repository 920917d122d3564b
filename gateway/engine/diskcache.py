"""The disk cache tier (``--cache DIR``): blocks kept on local disk behind the memory cache.

A block missing in memory is looked for here before a ranged GET; a block that arrives
from the store is handed to a background writer. Nothing here slows a reader: whether a
block is on disk is answered from memory (the index); files are read on a small thread
pool and written on two writer threads, and a write that finds the writers behind (too
many writes queued, or no memory free to hold its bytes) is dropped, never waited for. A
dropped block is owed: when a write finishes it is queued after all, if the memory cache
still holds its bytes (``Block.later``), so a read faster than the disk leaves on disk all
it left in memory.

Files (``gateway.engine.blockfile``) carry their identity and a checksum, checked before a
byte is served: a corrupted, truncated or foreign file is deleted and the block comes from
the store. The index (sizes and access order) lives in memory and is rebuilt from the
directory at start, oldest modification time first; a hit touches its file, so the order
survives a restart. Least recently used files go first when a write needs room under
``--max-cache-size``.

The directory is private: created 0700, refused when it is open to others or owned by
someone else, and owned by one process at a time through an flock'ed lock file. Workers of
``--workers N`` each use ``DIR/worker-i`` (their own lock) and hold ``DIR/lock`` shared, so
a single-process server and a set of workers cannot share one directory either.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import stat
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gateway.engine.blockfile import (
    CHECKSUM_SIZE,
    BadBlockFile,
    BlockId,
    check,
    encode_pieces,
    file_name,
    file_size,
    head_size,
    is_file_name,
    object_name,
    object_of,
)
from gateway.engine.budget import MemoryBudget
from gateway.engine.counters import Counters
from gateway.settings import EngineSettings, SettingsError

# Writes queued hold at most half the memory budget; more are dropped. A lone reader's
# read-ahead window may be a quarter of the budget, and a window's GETs can land at once
# (after a pause of the store): the queue takes two whole windows before it drops.
PENDING_SHARE = 2
READ_THREADS = 4
# A write is mostly the kernel's work (pages allocated and filled), then a wait for the GIL
# the event loop holds, so a second thread works while the first waits: on two busy cores
# one writer kept 714-935 of the 1,024 blocks of a 400 MB/s first read of 1 GiB, two kept
# all of them in four of six reads.
WRITE_THREADS = 2
IOV_MAX = 1024  # pieces one writev takes (Linux's limit)
# Dropped blocks remembered for a later write: far more blocks than a memory cache holds,
# in a few hundred KiB.
MAX_OWED = 4096
# A dropped block's bytes, asked for when the writers have room: None once the memory cache
# no longer holds them.
Later = Callable[[], list[bytes] | None]
FREE_SHARE = 20  # the default size leaves 1/20 (5%) of the disk free


class CacheDirRefused(SettingsError):
    """The cache directory cannot be used; the message names it and says why."""


@dataclass(slots=True)
class _Entry:
    size: int
    generation: int  # tells a rewritten file from the one a read started with


def _private_dir(path: Path, flag: str) -> None:
    """Create ``path`` 0700, or check an existing one is ours and closed to others."""
    try:
        path.mkdir(mode=0o700)
        os.chmod(path, 0o700)  # whatever the umask made of it
    except FileExistsError:
        pass
    except OSError as exc:
        raise CacheDirRefused(f"{flag} {path}: cannot create it: {exc.strerror}") from None
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CacheDirRefused(f"{flag} {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise CacheDirRefused(f"{flag} {path} is not a directory")
    if st.st_uid != os.geteuid():
        raise CacheDirRefused(
            f"{flag} {path} belongs to uid {st.st_uid}, not to this process (uid "
            f"{os.geteuid()}): the cache must be private; use a directory of your own")
    if st.st_mode & 0o077:
        raise CacheDirRefused(
            f"{flag} {path} is open to other users (mode {stat.S_IMODE(st.st_mode):04o}): "
            f"the cache must be private; chmod 700 it or use a new directory")


def _holder(fd: int) -> str:
    """`` (pid N)`` when the lock file names a running process."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 32, 0).decode().strip())
        os.kill(pid, 0)
        return f" (pid {pid})"
    return ""


def _lock(path: Path, shared: bool, flag: str, shown: Path) -> int:
    """An flock on ``path`` (exclusive unless ``shared``), held while the fd is open."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise CacheDirRefused(
            f"{flag} {shown} is in use by another bucketdav process{holder}: give each "
            "server its own cache directory") from None
    if not shared:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def default_max_size(root: Path, in_use: int, share: int) -> int:
    """All but 5% of the disk holding ``root``, counting what the cache already holds;
    the free part split in ``share`` (the workers of one server)."""
    st = os.statvfs(root)
    total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    return max(0, in_use + (free - total // FREE_SHARE) // max(1, share))


class DiskCache:
    """The block files of one process under ``root`` (``DIR`` or ``DIR/worker-i``)."""

    def __init__(
        self,
        directory: str | Path,
        max_size: int | None = None,
        *,
        worker: int | None = None,
        workers: int = 1,
        max_pending_bytes: int | None = None,
    ) -> None:
        flag = "--cache"
        top = Path(directory)
        # Its own until ``attach`` gives it the engine's.
        self.budget: MemoryBudget | None = None
        self.counters = Counters()
        self.max_pending_bytes = max_pending_bytes
        self._locks: list[int] = []
        _private_dir(top, flag)
        try:
            if worker is None:
                self.root = top
                self._locks.append(_lock(top / "lock", False, flag, top))
            else:
                self._locks.append(_lock(top / "lock", True, flag, top))
                self.root = top / f"worker-{worker}"
                _private_dir(self.root, flag)
                self._locks.append(_lock(self.root / "lock", False, flag, self.root))
            self.blocks_dir = self.root / "blocks"
            _private_dir(self.blocks_dir, flag)
            for shard in range(256):  # one per first byte of a file name: none made per write
                (self.blocks_dir / f"{shard:02x}").mkdir(mode=0o700, exist_ok=True)
        except BaseException:
            self._unlock()
            raise
        self._index: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._objects: Counter[str] = Counter()  # object hash -> files on disk
        self._pending: set[str] = set()
        # Blocks dropped while the writers were behind, by file name, oldest first.
        self._owed: OrderedDict[str, tuple[BlockId, Later]] = OrderedDict()
        self._futures: set[asyncio.Future[None]] = set()
        self._generation = 0
        self.used = 0  # bytes of the files in the index
        self._reserved = 0  # bytes of the writes under way
        self._scan()
        self.max_size = (max_size if max_size is not None
                         else default_max_size(self.root, self.used, workers))
        self._writer = ThreadPoolExecutor(WRITE_THREADS,
                                          thread_name_prefix="bucketdav-cache-write")
        # Names whose file is being removed: not written again until it is gone, since the
        # removal and the write could otherwise run at once on two writer threads.
        self._removing: set[str] = set()
        self._readers = ThreadPoolExecutor(READ_THREADS,
                                           thread_name_prefix="bucketdav-cache-read")
        self._closed = False
        for name in self._evict(0):  # the cap may have shrunk since the last run
            _remove(self._path(name))
        self._gauges()

    def attach(self, budget: MemoryBudget, counters: Counters) -> None:
        """Hold pending writes on ``budget`` (at most a share of it, unless told) and count
        in ``counters`` (the engine's)."""
        self.budget, self.counters = budget, counters
        if self.max_pending_bytes is None:
            self.max_pending_bytes = budget.limit // PENDING_SHARE
        self._gauges()

    def __repr__(self) -> str:
        return f"DiskCache({self.root} {self.used}/{self.max_size} bytes)"

    def __len__(self) -> int:
        return len(self._index)

    # ---- what is on disk (answered from memory) ------------------------------------------
    def holds(self, store: str, key: str) -> bool:
        """True when some version of ``key`` has blocks on disk."""
        return object_name(store, key) in self._objects

    def has(self, block: BlockId) -> bool:
        return file_name(block) in self._index

    def path_of(self, block: BlockId) -> Path:
        return self._path(file_name(block))

    def _path(self, name: str) -> Path:
        return self.blocks_dir / name[:2] / name

    # ---- reads -------------------------------------------------------------------------
    def wanted(self, block: BlockId) -> bool:
        """Whether to read ``block`` from disk: counts a miss when it is not there."""
        if self._closed or file_name(block) not in self._index:
            self.counters.disk_cache_misses += 1
            return False
        return True

    async def read(self, block: BlockId, length: int) -> bytes | None:
        """The ``length`` bytes of ``block`` if an intact file holds exactly them; None
        (after dropping a bad file) when the store must be asked."""
        name = file_name(block)
        entry = self._index.get(name)
        if entry is None or self._closed:
            self.counters.disk_cache_misses += 1
            return None
        self._index.move_to_end(name)
        path = self._path(name)
        loop = asyncio.get_running_loop()
        try:
            data = await loop.run_in_executor(
                self._readers, _load, path, block, length)
        except (BadBlockFile, OSError):
            self.counters.disk_cache_errors += 1
            self._forget(name, entry, unlink=True)
            return None
        if data is None:  # gone from under the index: ask the store
            self.counters.disk_cache_misses += 1
            self._forget(name, entry, unlink=False)
            return None
        self.counters.disk_cache_hits += 1
        self.counters.disk_cache_read_bytes += len(data)
        return data

    # ---- writes ------------------------------------------------------------------------
    def write_behind(self, block: BlockId, chunks: list[bytes],
                     later: Later | None = None) -> bool:
        """Queue ``block``'s bytes for the writers; never waits. False when it is not queued
        (already there, too large, or dropped: the writers behind, no memory free to hold
        them, or its old file still being removed). A dropped block with ``later`` (its
        bytes while the memory cache holds them) is owed: written once the writers have
        room, if the memory cache still holds it."""
        name = file_name(block)
        if self._closed or name in self._index or name in self._pending:
            return False
        queued = self._queue(name, block, chunks)
        if queued is False:
            self.counters.disk_cache_dropped_writes += 1
            if later is not None:
                self._owed[name] = (block, later)
                self._owed.move_to_end(name)  # owed again: the newest
                while len(self._owed) > MAX_OWED:  # the oldest are the likeliest gone
                    self._owed.popitem(last=False)
        return bool(queued)

    def _queue(self, name: str, block: BlockId, chunks: list[bytes]) -> bool | None:
        """Hand the bytes to the writers: True; False when they have no room for them now;
        None when the file could never fit."""
        length = sum(map(len, chunks))
        size = file_size(block, length)
        if size > self.max_size:
            return None
        charge = 0
        pending_cap = self.max_pending_bytes if self.max_pending_bytes is not None else size
        if name in self._removing or (self._pending and self._reserved + size > pending_cap) or (
            self.budget is not None and not (charge := self.budget.try_acquire(length))
        ):
            return False
        self._owed.pop(name, None)
        victims = self._evict(size)
        self._removing.update(victims)
        self._pending.add(name)
        self._reserved += size
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._writer, _store, self._path(name), block, chunks,
            [self._path(victim) for victim in victims])
        self._futures.add(future)
        future.add_done_callback(
            lambda done: self._written(done, name, size, charge, victims))
        return True

    def _pay_owed(self) -> None:
        """Queue the owed blocks the memory cache still holds, oldest first, while the
        writers have room: a first read faster than the disk still leaves them all on disk
        when its blocks outlive the writers' lag in memory."""
        while self._owed and not self._closed:
            name, (block, later) = next(iter(self._owed.items()))
            chunks = later()
            if chunks is None or name in self._index or name in self._pending:
                del self._owed[name]  # evicted from memory (its bytes are gone), or written
                continue
            if not self._queue(name, block, chunks):
                return  # behind again: the next finished write tries once more
            self.counters.disk_cache_late_writes += 1

    def _written(self, done: asyncio.Future[None], name: str, size: int, charge: int,
                 victims: list[str]) -> None:
        self._pending.discard(name)
        self._reserved -= size
        if charge and self.budget is not None:
            self.budget.release(charge)
        if done.cancelled() or done.exception() is not None:
            self.counters.disk_cache_errors += 1
        else:
            self._generation += 1
            self._index[name] = _Entry(size, self._generation)
            self._objects[object_of(name)] += 1
            self.used += size
            self.counters.disk_cache_written_bytes += size
            self._gauges()
        self._finished(done, victims)

    def _finished(self, done: asyncio.Future[None], removed: list[str]) -> None:
        """A writer is free again, failed or not: the names it removed may be written
        again, and the owed blocks get its room (at shutdown too, which waits for it)."""
        self._futures.discard(done)
        self._removing.difference_update(removed)
        self._pay_owed()

    def _evict(self, size: int) -> list[str]:
        """Take least recently used files out of the index until ``size`` more bytes fit;
        their names."""
        victims = []
        while self._index and self.used + self._reserved + size > self.max_size:
            name, entry = self._index.popitem(last=False)
            self._untrack(name, entry)
            self.counters.disk_cache_evictions += 1
            victims.append(name)
        return victims

    def _forget(self, name: str, entry: _Entry, unlink: bool) -> None:
        """Drop a file a read found bad or gone, unless it was rewritten meanwhile."""
        if self._index.get(name) is not entry:
            return
        del self._index[name]
        self._untrack(name, entry)
        if unlink:
            self._unlink(name)

    def _untrack(self, name: str, entry: _Entry) -> None:
        self.used -= entry.size
        obj = object_of(name)
        self._objects[obj] -= 1
        if self._objects[obj] <= 0:
            del self._objects[obj]
        self._gauges()

    def _unlink(self, name: str) -> None:
        if self._closed:
            return
        self._removing.add(name)
        future = asyncio.get_running_loop().run_in_executor(
            self._writer, _remove, self._path(name))
        self._futures.add(future)
        # Then its new bytes are written, if a read fetched them meanwhile (owed).
        future.add_done_callback(lambda done: self._finished(done, [name]))

    def _gauges(self) -> None:
        self.counters.disk_cache_bytes = self.used
        self.counters.disk_cache_limit = self.max_size

    # ---- start and stop ------------------------------------------------------------------
    def _scan(self) -> None:
        """Rebuild the index from the files, oldest modification first."""
        found: list[tuple[int, str, int]] = []
        for sub in os.scandir(self.blocks_dir):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(sub.path):
                if entry.name.endswith(".tmp"):  # a write cut by a crash
                    _remove(Path(entry.path))
                    continue
                if not is_file_name(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=False)
                found.append((st.st_mtime_ns, entry.name, st.st_size))
        for _, name, size in sorted(found):
            self._generation += 1
            self._index[name] = _Entry(size, self._generation)
            self._objects[object_of(name)] += 1
            self.used += size

    async def flush(self) -> None:
        """Wait for the writes and removals under way (tests, shutdown)."""
        while self._futures:
            await asyncio.gather(*list(self._futures), return_exceptions=True)

    async def close(self) -> None:
        """Finish the queued writes (a restart finds them), then give the directory up."""
        if self._closed:
            return
        await self.flush()
        self._closed = True
        await asyncio.to_thread(self._writer.shutdown, True)
        self._readers.shutdown(wait=False, cancel_futures=True)
        self._unlock()

    def _unlock(self) -> None:
        for fd in reversed(self._locks):
            os.close(fd)  # the flock goes with the last descriptor
        self._locks.clear()


def open_disk_cache(settings: EngineSettings) -> DiskCache | None:
    """The disk tier ``--cache`` asks for (None without it); CacheDirRefused if its
    directory cannot be this process's own."""
    if not settings.cache:
        return None
    return DiskCache(settings.cache, settings.max_cache_size,
                     worker=settings.cache_worker, workers=settings.cache_workers)


# ---- on the threads ------------------------------------------------------------------------
def _load(path: Path, block: BlockId, length: int) -> bytes | None:
    try:
        with open(path, "rb", buffering=0) as f:
            head = f.read(head_size(block))
            data = f.read(length)
            # One byte more than the checksum tells a padded or foreign file; asking for
            # more would allocate (and give back) a block-sized buffer on every hit.
            tail = f.read(CHECKSUM_SIZE + 1)
    except FileNotFoundError:
        return None
    data = check(head, data, tail, block, length)
    with contextlib.suppress(OSError):
        os.utime(path)  # the access order, for the next start's index
    return data


def _store(path: Path, block: BlockId, chunks: list[bytes], victims: list[Path]) -> None:
    for victim in victims:  # room first: the cap holds on disk too
        _remove(victim)
    temp = path.with_name(path.name + ".tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            fd = os.open(temp, flags, 0o600)
        except FileNotFoundError:  # its subdirectory was removed under us
            path.parent.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(temp, flags, 0o600)
        try:
            _write_all(fd, encode_pieces(block, chunks))
        finally:
            os.close(fd)
        os.replace(temp, path)  # whole or absent: a reader never sees half a file
    except BaseException:
        _remove(temp)
        raise


def _write_all(fd: int, pieces: list[bytes]) -> None:
    """Write ``pieces`` in order with as few system calls as the kernel allows (one writev,
    usually): each call on this thread waits for the GIL again while the event loop is
    busy, and a writer slowed that way fell behind a 1 GiB first read and dropped blocks."""
    views = [memoryview(piece) for piece in pieces]
    while views:
        done = os.writev(fd, views[:IOV_MAX])
        while views and done >= len(views[0]):
            done -= len(views.pop(0))
        if views and done:
            views[0] = views[0][done:]


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)

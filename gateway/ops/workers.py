"""Several server processes on one port (``--workers N``) under a supervising parent.

One Python process uses about one core; N workers use N. Each worker is a fresh interpreter
(multiprocessing's *spawn*: no event loop, thread, open client or lock of the parent is
inherited half-way), runs the ordinary single-process server (``gateway.server.serve``,
its drain included) with ``1/N`` of ``--memory-target`` (and of ``--max-cache-size``, in
its own ``--cache`` subdirectory), and listens on the same address
with ``SO_REUSEPORT``: the kernel spreads new connections over the listeners, and a
worker's listener leaves the group when it dies.

The kernel picks a listener by a hash of each connection's addresses: even over many
clients, but a handful of long connections (four big reads) can land three on one worker,
and a keep-alive connection never moves. One listening socket shared by all would be worse:
every worker wakes for a new connection and asyncio's accept loop takes all that are queued,
so one worker would take a whole burst. (``bench/run`` notes each worker's CPU seconds.)

The parent holds the port with a bound socket that never listens (so ``--port 0`` becomes
one port for all, and nobody else can take it while a worker restarts), restarts a worker
that dies (after a delay that doubles while that slot keeps dying young), gives up with one
line when workers keep dying together, and on SIGTERM/SIGINT passes SIGTERM on and waits
for every worker's drain. A worker notices its parent's death (its pipe ends) and drains.
Between those the parent sleeps until a worker speaks or exits (its pipe, its process
sentinel) or a restart is due: an idle server's parent never wakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from gateway.settings import Settings, SettingsError

# For tests only, never a user option: lets N > 1 workers run with --state memory, so the
# process supervision can be tested without a Redis server.
UNSHARED_WORKERS_FOR_TESTS = "BUCKETDAV_TEST_UNSHARED_WORKERS"

POLL = 0.05  # seconds between looks at the workers while they start
YOUNG = 30.0  # a worker dying before this age makes its slot's next restart wait longer
FIRST_DELAY = 0.5  # seconds before the first restart of a slot; doubles up to MAX_DELAY
MAX_DELAY = 30.0
GIVE_UP_WINDOW = 60.0  # seconds; giving up once 3 * N workers died within it
STOP_MARGIN = 10.0  # seconds past the drain a worker gets before it is killed

CONTEXT = multiprocessing.get_context("spawn")

WorkerTarget = Callable[[Settings, int, Connection], None]


def refusal(settings: Settings) -> str | None:
    """Why these settings cannot run (None: they can). Workers keep locks, dead properties,
    write guards and caches in the state store: in memory, each worker would have its own."""
    workers = settings.server.workers
    if workers > 1 and settings.server.state == "memory":
        return (
            f"--workers {workers} needs a shared --state (redis://host:port/db): with "
            "--state memory each worker would keep its own locks, write guards and caches, "
            "so two clients could lock or create the same file at once"
        )
    return None


def memory_share(target_mib: int, workers: int) -> int:
    """Each worker's --memory-target (MiB): the whole split evenly, never below 1 MiB."""
    return max(1, target_mib // workers)


def worker_settings(settings: Settings, port: int) -> Settings:
    """What each worker runs with: the reserved port, its memory share, one process, and a
    private admin port on loopback that only the parent reads."""
    workers = settings.server.workers
    cache_size = settings.engine.max_cache_size
    return replace(
        settings,
        server=replace(settings.server, port=port, workers=1),
        engine=replace(settings.engine,
                       memory_target=memory_share(settings.engine.memory_target, workers),
                       max_cache_size=None if cache_size is None else cache_size // workers,
                       cache_workers=workers),
        ops=replace(settings.ops, admin_host="127.0.0.1", admin_port=0),
    )


def slot_settings(settings: Settings, index: int) -> Settings:
    """Worker ``index``'s own: its --cache is ``DIR/worker-<index>`` (a restarted worker
    takes its predecessor's blocks)."""
    return replace(settings, engine=replace(settings.engine, cache_worker=index))


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) with SO_REUSEPORT that never listens: it holds the
    port (turning 0 into a real one) while taking no connection itself."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(str(exc)) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class WorkerLink:
    """A worker's end of its pipe to the parent: says when it serves, and hears the
    parent's death (the pipe ends) so that a worker never outlives it."""

    def __init__(self, index: int, conn: Connection) -> None:
        self.index = index
        self.conn = conn

    def started(self, admin_port: int | None) -> None:
        # the parent may be gone already: ``watch`` then hears it and the worker drains
        with contextlib.suppress(OSError):
            self.conn.send(("ready", os.getpid(), admin_port))

    def watch(self, loop: asyncio.AbstractEventLoop, parent_gone: Callable[[], None]) -> None:
        def readable() -> None:
            try:
                self.conn.recv()
            except (EOFError, OSError):
                loop.remove_reader(self.conn.fileno())
                parent_gone()

        loop.add_reader(self.conn.fileno(), readable)


@dataclass
class Slot:
    """One worker place; a restarted worker takes its dead predecessor's slot."""

    index: int
    process: BaseProcess | None = None
    conn: Connection | None = None  # the parent's end of the pipe
    pid: int | None = None
    admin_port: int | None = None
    ready: bool = False
    started_at: float = 0.0
    young_deaths: int = 0
    restart_at: float | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.exitcode is None


class Supervisor:
    """Starts, watches, restarts and stops the workers of one server."""

    def __init__(self, settings: Settings, target: WorkerTarget) -> None:
        self.settings = settings
        self.count = settings.server.workers
        self.target = target
        self.slots = [Slot(i) for i in range(self.count)]
        self.restarts = 0
        self.draining = False
        self._deaths: deque[float] = deque()
        self._reserved: socket.socket | None = None
        self._worker_settings: Settings | None = None

    # ---- start -------------------------------------------------------------------------

    def reserve(self) -> int:
        """Hold the listening address; returns the port the workers share."""
        server = self.settings.server
        self._reserved = reserve_port(server.host, server.port)
        port = int(self._reserved.getsockname()[1])
        self._worker_settings = worker_settings(self.settings, port)
        return port

    def _spawn(self, slot: Slot) -> None:
        assert self._worker_settings is not None
        mine, theirs = CONTEXT.Pipe()
        process = CONTEXT.Process(
            target=self.target,
            args=(slot_settings(self._worker_settings, slot.index), slot.index, theirs),
            name=f"bucketdav-worker-{slot.index}",
        )
        process.start()
        theirs.close()  # only the worker holds it now: its end sees ours close with us
        slot.process, slot.conn, slot.pid = process, mine, process.pid
        slot.admin_port, slot.ready, slot.restart_at = None, False, None
        slot.started_at = time.monotonic()

    def _hear(self, slot: Slot) -> None:
        conn = slot.conn
        try:
            while conn is not None and conn.poll():
                message = conn.recv()
                if message[0] == "ready":
                    slot.pid, slot.admin_port, slot.ready = message[1], message[2], True
        except (EOFError, OSError):
            # The worker is gone (its exit code says the rest): its pipe, readable for ever
            # now, must not wake the parent again while the exit is on its way.
            if conn is not None:
                conn.close()

    async def _until_ready(self, slots: list[Slot], stop: asyncio.Event) -> int | None:
        """Wait for ``slots`` to serve; the exit status of the first that fails, if any."""
        while not all(s.ready for s in slots) and not stop.is_set():
            for slot in slots:
                self._hear(slot)
                if not slot.ready and not slot.alive:
                    code = slot.process.exitcode if slot.process else None
                    return code if code and code > 0 else 1
            await asyncio.sleep(POLL)
        return None

    async def start(self, stop: asyncio.Event) -> int | None:
        """Start every worker: the first alone, so a setting or a store that cannot work
        is reported once, by one worker; then the others together. Returns an exit status
        if a worker could not start."""
        first, rest = self.slots[0], self.slots[1:]
        self._spawn(first)
        failed = await self._until_ready([first], stop)
        if failed is None:
            for slot in rest:
                self._spawn(slot)
            failed = await self._until_ready(rest, stop)
        if failed is not None:
            await self.stop(0.0)
        return failed

    # ---- run ---------------------------------------------------------------------------

    def _delay(self, slot: Slot) -> float:
        return float(min(MAX_DELAY, FIRST_DELAY * 2 ** max(0, slot.young_deaths - 1)))

    def _died(self, slot: Slot, now: float) -> str | None:
        """Note a death and schedule the restart; a line to give up with, if it is time."""
        code = slot.process.exitcode if slot.process else None
        how = f"was killed by signal {-code}" if code is not None and code < 0 \
            else f"exited with status {code}"
        if slot.conn is not None:
            slot.conn.close()
        slot.process, slot.conn, slot.ready, slot.admin_port = None, None, False, None
        slot.young_deaths = slot.young_deaths + 1 if now - slot.started_at < YOUNG else 1
        self._deaths.append(now)
        while self._deaths and now - self._deaths[0] > GIVE_UP_WINDOW:
            self._deaths.popleft()
        if len(self._deaths) >= 3 * self.count:
            return (f"giving up: {len(self._deaths)} worker deaths within "
                    f"{GIVE_UP_WINDOW:g} s (the last: worker {slot.index} {how}); "
                    "see the lines above for why they fail")
        slot.restart_at = now + self._delay(slot)
        print(f"bucketdav: worker {slot.index} (pid {slot.pid}) {how}; restarting it in "
              f"{self._delay(slot):g} s", file=sys.stderr, flush=True)
        return None

    async def supervise(self, stop: asyncio.Event) -> int | None:
        """Keep N workers running until ``stop``; an exit status when giving up."""
        while not stop.is_set():
            now = time.monotonic()
            for slot in self.slots:
                if slot.process is not None:
                    self._hear(slot)
                    if not slot.alive:
                        line = self._died(slot, now)
                        if line is not None:
                            print(f"bucketdav: {line}", file=sys.stderr, flush=True)
                            await self.stop(self.settings.server.shutdown_grace)
                            return 1
                elif slot.restart_at is not None and now >= slot.restart_at:
                    self.restarts += 1
                    self._spawn(slot)
            await self._until_news(stop)
        return None

    def _watched(self) -> list[int]:
        """What tells the parent about its workers: each one's exit (its sentinel) and its
        pipe (a message; its end when the worker is gone, not watched again once seen)."""
        fds = []
        for slot in self.slots:
            if slot.process is not None:
                fds.append(slot.process.sentinel)
                if slot.conn is not None and not slot.conn.closed:
                    fds.append(slot.conn.fileno())
        return fds

    async def _until_news(self, stop: asyncio.Event) -> None:
        """Sleep until a worker says something or exits, a restart is due, or ``stop``:
        an idle parent never wakes (it used to look every POLL seconds)."""
        due = [s.restart_at for s in self.slots if s.process is None and s.restart_at]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        loop = asyncio.get_running_loop()
        news = asyncio.Event()
        fds = self._watched()
        for fd in fds:
            loop.add_reader(fd, news.set)
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(news.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fd in fds:
                loop.remove_reader(fd)
            for task in waits:
                task.cancel()

    # ---- stop --------------------------------------------------------------------------

    async def stop(self, grace: float) -> int:
        """SIGTERM to every worker, which drains within ``grace``; a worker still running
        well past that is killed. 0 when every worker stopped by itself."""
        self.draining = True
        running = [s.process for s in self.slots if s.process is not None]
        for process in running:
            if process.exitcode is None and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace + STOP_MARGIN
        pending = [p for p in running if p.exitcode is None]
        while pending and (left := deadline - time.monotonic()) > 0:
            await asyncio.to_thread(wait, [p.sentinel for p in pending], left)
            pending = [p for p in pending if p.exitcode is None]
        status = 0
        for process in running:
            if process.exitcode is None:
                print(f"bucketdav: worker pid {process.pid} did not stop; killing it",
                      file=sys.stderr, flush=True)
                process.kill()
                status = 1
            process.join(5)
        for slot in self.slots:
            if slot.conn is not None:
                slot.conn.close()
            slot.process, slot.conn, slot.ready, slot.restart_at = None, None, False, None
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None
        return status

    # ---- what the admin port shows -----------------------------------------------------

    def admin_urls(self) -> list[tuple[int, str | None]]:
        """(slot, URL of its private admin port, None while it is not serving)."""
        return [
            (s.index, f"http://127.0.0.1:{s.admin_port}" if s.ready and s.admin_port else None)
            for s in self.slots
        ]

    def pids(self) -> list[tuple[int, int | None]]:
        return [(s.index, s.pid if s.alive else None) for s in self.slots]


def check(settings: Settings) -> None:
    """Refuse settings that cannot run as workers (SettingsError: exit status 2)."""
    reason = refusal(settings)
    if reason is not None and not os.environ.get(UNSHARED_WORKERS_FOR_TESTS):
        raise SettingsError(reason)

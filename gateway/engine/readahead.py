"""The read-ahead policy of one reader: state and decisions, no blocks, no store, no I/O.

``OpenRead`` (the mechanics: pins, queues, fetches) asks this object what to do and tells
it what happened, as Mountpoint's prefetcher asks its backpressure controller and seek
window. Change the read-ahead here; ``tests/engine/test_readahead_policy.py`` drives it
without a store.

The decisions:

* **Sequential or seek.** A range that starts where the last one ended continues the
  window; any other start is a seek, and the window starts over.
* **The span is intent.** An HTTP GET says how many bytes it wants (the object, or
  ``bytes=a-b``), unlike a file system's read (which is why Mountpoint ramps up): a range
  starts with a window of its span, up to ``window_cap``, so a long read has its whole
  window in flight from the first moment instead of ramping from one block. An aborted
  read costs at most that window.
* **Exact small reads.** A read shorter than a block right after a seek fetches just its
  bytes (rounding it up to whole blocks would cost a 64 KiB range read a 1 MiB
  transfer), unless its blocks are already live or block 0 is held from ``open``.
* **The window.** It starts at the span (at least one block) and doubles every time the
  reader has consumed a whole window, up to ``window_cap``: ``max_window``, at most a
  quarter of the memory budget while one or two reads run in the process (large windows
  of few, large GETs: see below), an eighth once more do, so several readers can run at
  full speed side by side and many readers leave the budget's room to the cache. When
  the budget refuses read-ahead it halves (never below one block).
* **Top-up.** Read-ahead is topped up only when a part's worth of blocks is missing (or
  the last blocks of the range are), so the window is refilled by part-sized GETs rather
  than a GET per consumed block.
* **GET size.** ``part_for(window)``: a ``GETS_PER_WINDOW``-th of the window, between
  a quarter of ``part_size`` (half the window when smaller) and ``part_size``. The window
  is the bytes in flight, and each GET pays the store's latency once, so a reader's
  rate is about ``window / (latency + part time)``: smaller parts mean more connections
  streaming at once for the same memory. Each GET also costs the gateway CPU (signing,
  the request, the response's head, a task: a sequential read of 1 GiB in 3 MiB parts
  spent a sixth of its CPU on its 341 GETs), so a full window (100 MiB at
  ``--memory-target 512``) goes out as 12 or more GETs of the whole ``part_size`` (8 MiB:
  128 GETs per GiB), still more connections at once than the limit's 8.
* **Drop-behind.** A reader that has read ``streaming_after`` bytes sequentially is
  streaming: blocks it consumed are not kept in the cache, unless another reader of the
  object is active or it is block 0 (re-opening the object then costs no request).
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.engine.tuning import Tuning, block_count

# GETs a full window is cut into: more connections streaming at once than the limit's 8,
# each as large as part_size allows (fewer GETs, less CPU per GiB).
GETS_PER_WINDOW = 12


# Reads running in the process up to which each may have a quarter of the budget.
FEW_READERS = 2


def window_cap(tuning: Tuning, budget_limit: int, readers: int = 1) -> int:
    """The largest read-ahead window while ``readers`` reads run in the process:
    ``max_window``, but no more than a quarter of the budget (an eighth when more than
    ``FEW_READERS`` run), and never less than one block."""
    share = 4 if readers <= FEW_READERS else 8
    return max(tuning.block_size, min(tuning.max_window, budget_limit // share))


def start_window(span: int, cap: int, block: int) -> int:
    """The window a range of ``span`` bytes starts with: the span in whole blocks, at most
    ``cap``, at least one block (the client said how far it reads)."""
    return max(block, min(cap, -(-span // block) * block))


def grow(window: int, cap: int) -> int:
    return min(window * 2, cap)


def shrink(window: int, block: int) -> int:
    """Halve the window when the budget refuses read-ahead (at least one block)."""
    return max(block, window // 2)


def part_for(window: int, tuning: Tuning) -> int:
    """Bytes per ranged GET for a window, a whole number of blocks: a
    ``GETS_PER_WINDOW``-th of it (many requests in parallel), at most ``part_size``, and
    at least a quarter of ``part_size`` (each GET costs CPU; a small window still goes
    out as two GETs: half of it) and one block."""
    block = tuning.block_size
    largest = max(tuning.part_size, block)
    smallest = min(window // 2, largest // 4)
    part = min(max(window // GETS_PER_WINDOW, smallest, block), largest)
    return part - part % block


def split_runs(indices: list[int], per_request: int) -> list[list[int]]:
    """Group block indices into runs of consecutive blocks, each at most ``per_request``
    long: one ranged GET per run."""
    runs: list[list[int]] = []
    for index in indices:
        run = runs[-1] if runs else None
        if run is not None and run[-1] + 1 == index and len(run) < per_request:
            run.append(index)
        else:
            runs.append([index])
    return runs


class ReadAhead:
    """The window of one reader and every read-ahead decision made with it."""

    def __init__(self, tuning: Tuning, budget_limit: int) -> None:
        self.tuning = tuning
        self.block = tuning.block_size
        self._budget_limit = budget_limit
        self.cap = window_cap(tuning, budget_limit)
        self.window = self.block
        self._since_growth = 0  # bytes consumed since the window last grew
        self._sequential = 0  # bytes consumed since the last seek
        self._next = 0  # where a sequential continuation starts

    def __repr__(self) -> str:
        return f"ReadAhead(window={self.window} sequential={self._sequential})"

    def readers(self, count: int) -> None:
        """``count`` reads run in the process now: the cap follows (``window_cap``), and a
        window above it comes down at once."""
        self.cap = window_cap(self.tuning, self._budget_limit, count)
        if self.window > self.cap:
            self.window = self.cap
            self._since_growth = 0

    # ---- where a range starts --------------------------------------------------------
    def seek(self, start: int, end: int | None = None) -> bool:
        """A range ``[start, end)`` begins: True if ``start`` is not where the reader left
        off (a seek: the window starts over). The window is then at least what the range
        asks for (``start_window``), up to the cap; ``end`` None: no span declared."""
        seek = start != self._next
        if seek:
            self.window = self.block
            self._since_growth = 0
            self._sequential = 0
        if end is not None and end > start:
            wanted = start_window(end - start, self.cap, self.block)
            if wanted > self.window:
                self.window = wanted
                self._since_growth = 0
        return seek

    def wants_exact(
        self, start: int, end: int, *, first_held: bool, live: Callable[[int], bool]
    ) -> bool:
        """After a seek: fetch ``[start, end)`` byte-exact instead of whole blocks?

        Only a read shorter than a block, when none of its blocks is ``live`` (cached or
        in flight) and it does not start in block 0 while ``open`` holds that block."""
        if end - start >= self.block or start >= end:
            return False
        if first_held and start < self.block:
            return False
        first, last = start // self.block, (end - 1) // self.block
        return not any(live(index) for index in range(first, last + 1))

    # ---- how far ahead -----------------------------------------------------------------
    def target(self, pos: int, end: int) -> int:
        """One past the last block the window wants pinned when the reader is at ``pos``
        of a range ending at ``end``."""
        return block_count(min(pos + self.window, end), self.block)

    def top_up(self, *, pinned: int, front: int, target: int, end: int) -> bool:
        """Pin and fetch blocks ``[front, target)`` now? ``pinned``: blocks held ahead
        of the reader (0: the block it needs now is missing)."""
        return (
            pinned == 0
            or target - front >= self.per_request()
            or (target > front and target == block_count(end, self.block))
        )

    def per_request(self) -> int:
        """Blocks per ranged GET: one part's worth for the current window."""
        return max(1, part_for(self.window, self.tuning) // self.block)

    def refused(self) -> None:
        """The budget had no room for read-ahead: halve the window."""
        self.window = shrink(self.window, self.block)
        self._since_growth = 0

    # ---- what the reader consumed --------------------------------------------------------
    def consumed(self, index: int, start: int, stop: int, *, shared: bool) -> bool:
        """Bytes ``[start, stop)`` of block ``index`` were handed to the consumer; the
        reader is now at ``stop``. Returns whether the cache should keep the block
        (drop-behind); ``shared``: another reader of the object is active."""
        keep = self._sequential < self.tuning.streaming_after or index == 0 or shared
        n = stop - start
        self._sequential += n
        self._since_growth += n
        if self._since_growth >= self.window:
            self.window = grow(self.window, self.cap)
            self._since_growth = 0
        self._next = stop
        return keep

    def read_exact(self, end: int) -> None:
        """An exact read ended at ``end``: a range starting there continues."""
        self._next = end

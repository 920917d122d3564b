"""What the engine counts, for tests and /metrics (``gateway.ops.metrics`` reads ``snapshot()``).

Plain integers bumped in place: the engine runs on one event loop, so no locking is
needed, and a reader of ``snapshot()`` sees a consistent set between two awaits.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from gateway.engine.budget import MemoryBudget


@dataclass
class Counters:
    # store requests, by kind
    store_gets: int = 0
    store_heads: int = 0
    store_lists: int = 0
    bytes_fetched: int = 0  # body bytes received from the store
    # blocks
    block_hits: int = 0  # found complete in the cache
    block_misses: int = 0  # had to be fetched
    blocks_shared: int = 0  # found in flight for another reader and awaited
    fetches_cancelled: int = 0  # read-ahead dropped because nobody waited for it any more
    exact_reads: int = 0  # short reads after a seek, fetched byte-exact outside the cache
    # metadata (HEAD and listing pages)
    metadata_hits: int = 0
    metadata_misses: int = 0
    # requests in flight (ranged GETs whose body is being received)
    inflight_requests: int = 0
    inflight_peak: int = 0
    # failures
    retries: int = 0  # ranged GETs retried after a transient error
    changed: int = 0  # reads that found the object replaced (If-Match failed)
    aborts: int = 0  # reads that ended with an error after they started
    # listings: keys that are not valid paths (control characters, ...), left out each time
    invalid_keys_hidden: int = 0
    # the disk cache tier (--cache): blocks served from disk or not found there, bytes
    # read and written, files evicted to stay under the cap, files found bad or failed
    # writes, writes dropped because the writer was behind; its size and cap (levels)
    disk_cache_hits: int = 0
    disk_cache_misses: int = 0
    disk_cache_read_bytes: int = 0
    disk_cache_written_bytes: int = 0
    disk_cache_evictions: int = 0
    disk_cache_errors: int = 0
    disk_cache_dropped_writes: int = 0
    disk_cache_late_writes: int = 0
    disk_cache_bytes: int = 0
    disk_cache_limit: int = 0
    budget: MemoryBudget | None = field(default=None, repr=False, compare=False)

    @property
    def budget_in_use(self) -> int:
        return self.budget.in_use if self.budget is not None else 0

    @property
    def budget_peak(self) -> int:
        return self.budget.peak if self.budget is not None else 0

    def request_started(self) -> None:
        self.inflight_requests += 1
        self.inflight_peak = max(self.inflight_peak, self.inflight_requests)

    def request_ended(self) -> None:
        self.inflight_requests -= 1

    def snapshot(self) -> dict[str, int]:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "budget"}
        values["budget_in_use"] = self.budget_in_use
        values["budget_peak"] = self.budget_peak
        values["budget_limit"] = self.budget.limit if self.budget is not None else 0
        return values

"""What an `approximate` prefix-aware router believes each replica caches.

Such a router never sees the replicas' caches: it remembers which prompt
blocks it sent where, and forgets them the way its source does:
- Dynamo's ApproxKvIndexer: every routed block expires `ttl_s` after it was
  last routed; past `max_entries` the earliest-expiring entries are pruned
  down to `prune_target_ratio` of it (later blocks of a request first);
- SGLang's cache-aware tree: every `trim_interval_s` each replica's tree is
  cut to `trim_size` by least recent use;
- llm-d's approximate prefix producer: one LRU of `lru_capacity` blocks per
  replica.
The index is keyed by the trace's block ids (chained hashes, so a block id
stands for its whole prefix, like the routers' own block/prefix hashes).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Sequence


class ApproxPrefixIndex:
    """Per replica, an ordered map block -> time last routed (oldest first),
    and for every block the bitmask of replicas believed to hold it."""

    def __init__(self, num_replicas: int, *, ttl_s: float = math.inf, lru_capacity: int = 0,
                 max_entries: int = 0, prune_target_ratio: float = 1.0,
                 trim_interval_s: float = 0.0, trim_size: int = 0):
        self.n = int(num_replicas)
        self.entries: list[OrderedDict[int, float]] = [OrderedDict() for _ in range(num_replicas)]
        self.holders: dict[int, int] = {}
        self.ttl_s = float(ttl_s)
        self.lru_capacity = int(lru_capacity)
        self.max_entries = int(max_entries)
        self.prune_target_ratio = float(prune_target_ratio)
        self.trim_interval_s = float(trim_interval_s)
        self.trim_size = int(trim_size)
        self.next_trim = self.trim_interval_s if self.trim_interval_s > 0 else math.inf
        self.total = 0

    def _drop_oldest(self, r: int) -> None:
        b, _ = self.entries[r].popitem(last=False)
        m = self.holders[b] & ~(1 << r)
        if m:
            self.holders[b] = m
        else:
            del self.holders[b]
        self.total -= 1

    def refresh(self, now: float) -> None:
        """Drop what has expired (TTL) or been trimmed (periodic) by `now`."""
        if self.ttl_s != math.inf:
            horizon = now - self.ttl_s
            for r, od in enumerate(self.entries):
                while od and next(iter(od.values())) <= horizon:
                    self._drop_oldest(r)
        while now >= self.next_trim:
            for r, od in enumerate(self.entries):
                while len(od) > self.trim_size:
                    self._drop_oldest(r)
            self.next_trim += self.trim_interval_s

    def overlaps(self, blocks: Sequence[int], n: int) -> list[int]:
        """Per replica, the leading blocks of the request it is believed to hold."""
        out = [n] * self.n
        alive = (1 << self.n) - 1
        holders = self.holders
        for k in range(n):
            m = holders.get(blocks[k], 0) & alive
            gone = alive & ~m
            while gone:
                low = gone & -gone
                out[low.bit_length() - 1] = k
                gone ^= low
            alive = m
            if not alive:
                break
        return out

    def any_replica_run(self, blocks: Sequence[int], n: int) -> list[int]:
        """llm-d's matchLongestPrefix: walk the prefix while any replica holds
        the block, counting for each replica the blocks it holds."""
        out = [0] * self.n
        holders = self.holders
        for k in range(n):
            m = holders.get(blocks[k], 0)
            if not m:
                break
            while m:
                low = m & -m
                out[low.bit_length() - 1] += 1
                m ^= low
        return out

    def size(self, replica: int) -> int:
        return len(self.entries[replica])

    def insert(self, replica: int, blocks: Sequence[int], now: float, tail_first: bool = False) -> None:
        od = self.entries[replica]
        holders = self.holders
        bit = 1 << replica
        for b in (reversed(blocks) if tail_first else blocks):
            if b in od:
                od.move_to_end(b)
            else:
                self.total += 1
                holders[b] = holders.get(b, 0) | bit
            od[b] = now
        if self.lru_capacity > 0:
            while len(od) > self.lru_capacity:
                self._drop_oldest(replica)
        if self.max_entries > 0 and self.total > self.max_entries:
            self._prune()

    def _prune(self) -> None:
        """Remove the oldest entries over all replicas down to the target."""
        target = int(self.max_entries * self.prune_target_ratio)
        while self.total > target:
            r = min((r for r, od in enumerate(self.entries) if od),
                    key=lambda r: next(iter(self.entries[r].values())))
            self._drop_oldest(r)

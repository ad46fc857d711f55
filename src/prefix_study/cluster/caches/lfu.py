"""`lfu` (LFU-DA) and `lfu_plain` (kernels/lfu.py), block-semantics state."""

from __future__ import annotations

import heapq

from prefix_study.cluster.caches import register_cache
from prefix_study.cluster.caches._base import BlockStateCache, CacheContext, NO_CONTEXT


@register_cache("lfu")
class LfuDaCache(BlockStateCache):
    """Evict the smallest (priority, time of last change): the kernel's
    indexed heap as a heap of (priority, time, id) whose entries are stale
    once the id's `cached` value changed. `cached`: id -> (priority, time)."""

    aging = True
    cached: dict[int, tuple[float, int]]

    def __init__(self, capacity: int, context: CacheContext = NO_CONTEXT):
        super().__init__(capacity, context)
        self.freq: dict[int, float] = {}  # accesses since insertion
        self.heap: list[tuple[float, int, int]] = []
        self.age = 0.0  # L: priority of the last evicted block
        self.clock = 0

    def access(self, x: int, position: int) -> None:
        cached, heap = self.cached, self.heap
        t = self.clock
        self.clock += 1
        if x in cached:
            f = self.freq[x] + 1.0
            self.freq[x] = f
        else:
            if len(cached) == self.capacity:
                while True:
                    k, s, v = heapq.heappop(heap)
                    if cached.get(v) == (k, s):
                        break
                if self.aging:
                    self.age = k
                del cached[v], self.freq[v]
            f = self.freq[x] = 1.0
        key = self.age + f if self.aging else f
        cached[x] = (key, t)
        heapq.heappush(heap, (key, t, x))
        if len(heap) > 4 * len(cached) + 64:  # drop stale entries
            self.heap = [(k, s, v) for v, (k, s) in cached.items()]
            heapq.heapify(self.heap)


@register_cache("lfu_plain")
class PlainLfuCache(LfuDaCache):
    """LFU without aging."""

    aging = False

"""`cost_lru`: prefix-aware cost-weighted LRU (kernels/cost_lru.py),
block-semantics state; recompute costs from `replay/simulate.py` (the
cluster's cost model at its block size, as the replay stage prices them)."""

from __future__ import annotations

import heapq

import numpy as np

from prefix_study.cluster.caches import register_cache
from prefix_study.cluster.caches._base import BlockStateCache, CacheContext, NO_CONTEXT
from prefix_study.replay.simulate import recompute_cost


@register_cache("cost_lru")
class CostLruCache(BlockStateCache):
    """GreedyDual over prefix-tree leaves. The kernel's indexed heap of
    leaves is a heap of (value, time, id) whose entries are stale once the
    id left `leaves` or its value/time changed. `cached`: cached ids."""

    cached: dict[int, None]

    def __init__(self, capacity: int, context: CacheContext = NO_CONTEXT):
        super().__init__(capacity, context)
        self.parent: dict[int, int] = {}    # fixed at first access; -1: root
        self.children: dict[int, int] = {}  # cached blocks whose parent it is
        self.value: dict[int, float] = {}   # H
        self.time: dict[int, int] = {}
        self.leaves: set[int] = set()
        self.heap: list[tuple[float, int, int]] = []
        self.inflation = 0.0  # L
        self.clock = 0
        self.prev = -1
        self.cost: list[float] = []

    def begin(self, category: int) -> None:
        self.prev = -1

    def _push(self, x: int) -> None:
        heapq.heappush(self.heap, (self.value[x], self.time[x], x))

    def _pop_leaf(self) -> int:
        value, time, leaves = self.value, self.time, self.leaves
        while True:
            h, t, v = heapq.heappop(self.heap)
            if v in leaves and time[v] == t and value[v] == h:
                return v

    def access(self, x: int, position: int) -> None:
        if position >= len(self.cost):
            c = self.context
            self.cost = recompute_cost(np.arange(max(2 * position, 64), dtype=np.int32), c.block_size,
                                       c.cost_model).tolist()
        parent, children, value, leaves, cached = self.parent, self.children, self.value, self.leaves, self.cached
        if x not in parent:
            parent[x] = self.prev
        self.prev = x
        t = self.clock
        self.clock += 1
        value[x] = self.inflation + self.cost[position]
        self.time[x] = t
        if x in cached:
            if x in leaves:
                self._push(x)
            return
        if len(cached) == self.capacity:
            v = self._pop_leaf()
            self.inflation = value[v]
            leaves.discard(v)
            del cached[v]
            pv = parent[v]
            if pv >= 0:
                children[pv] -= 1
                if children[pv] == 0 and pv in cached:
                    leaves.add(pv)
                    self._push(pv)
            value[x] = self.inflation + self.cost[position]
        cached[x] = None
        if children.get(x, 0) == 0:
            leaves.add(x)
            self._push(x)
        px = parent[x]
        if px >= 0:
            children[px] = children.get(px, 0) + 1
            if children[px] == 1:
                leaves.discard(px)
        if len(self.heap) > 4 * len(leaves) + 64:  # drop stale entries
            self.heap = [(value[v], self.time[v], v) for v in leaves]
            heapq.heapify(self.heap)

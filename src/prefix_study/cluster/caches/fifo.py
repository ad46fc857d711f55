"""`fifo`: FIFO in vLLM's block pool (kernels/fifo.py `fifo_vllm_free_queue`).

Physical blocks: a request that does not hit a hash (a miss, an orphan
after its prefix broke, a block never looked up) computes a new copy, so a
hash may live in several blocks; a hit pins the hash's oldest copy. A copy
gets its insertion stamp the first time it is released (tail first), keeps
it when released again, and eviction takes the queued copy with the oldest
stamp, from a lazily cleaned heap as in the kernel. Records live only while
their copy does (evicted ones are dropped), so memory follows the capacity.
"""

from __future__ import annotations

import heapq
from typing import Sequence

from prefix_study.cluster.caches import register_cache
from prefix_study.cluster.caches._base import CacheContext, NO_CONTEXT, ReplicaCache

_QUEUED, _PINNED = 1, 2


@register_cache("fifo")
class VllmFifoCache(ReplicaCache):
    """`cached`: hash id -> its live copies (record numbers), oldest first."""

    cached: dict[int, list[int]]

    def __init__(self, capacity: int, context: CacheContext = NO_CONTEXT):
        super().__init__(capacity, context)
        # Live records (physical blocks): hash id, insertion stamp (-1 until
        # first released), state (queued or pinned).
        self.rec_id: dict[int, int] = {}
        self.rec_stamp: dict[int, int] = {}
        self.rec_state: dict[int, int] = {}
        self.heap: list[tuple[int, int]] = []  # (stamp, record), stale entries skipped
        self.records = 0
        self.stamps = 0
        self.used = 0  # physical blocks in use, pinned or queued

    def __len__(self) -> int:
        return self.used

    def _evict_oldest(self) -> bool:
        heap, state, stamp = self.heap, self.rec_state, self.rec_stamp
        while heap:
            st, r = heapq.heappop(heap)
            if state.get(r) != _QUEUED or stamp[r] != st:
                continue
            del state[r], stamp[r]
            x = self.rec_id.pop(r)
            copies = self.cached[x]
            copies.remove(r)
            if not copies:
                del self.cached[x]
            return True
        return False

    def serve(self, blocks: Sequence[int], n_lookup: int, partial_tail: bool, category: int = 0) -> int:
        cap = self.capacity
        if cap <= 0:
            return 0
        cached, state = self.cached, self.rec_state
        held: list[int] = []
        hits = 0
        run = True
        for pos, x in enumerate(blocks):
            run = run and pos < n_lookup and x in cached
            if run:
                hits += 1
                r = cached[x][0]
                if state[r] == _QUEUED:
                    state[r] = _PINNED
                    held.append(r)
                continue
            if self.used < cap:
                self.used += 1
            elif not self._evict_oldest():
                continue  # every block is held by this request
            r = self.records
            self.records += 1
            self.rec_id[r] = x
            self.rec_stamp[r] = -1
            state[r] = _PINNED
            cached.setdefault(x, []).append(r)
            held.append(r)
        if partial_tail and self.used >= cap and self._evict_oldest():
            self.used -= 1
        stamp = self.rec_stamp
        for r in reversed(held):  # release tail first
            state[r] = _QUEUED
            if stamp[r] < 0:
                stamp[r] = self.stamps
                self.stamps += 1
            heapq.heappush(self.heap, (stamp[r], r))
        if len(self.heap) > 4 * self.used + 64:  # drop stale entries; (stamp, record) is unique
            self.heap = sorted((stamp[r], r) for r, s in state.items() if s == _QUEUED)
        return hits

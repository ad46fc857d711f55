"""`s3fifo`: S3-FIFO (kernels/s3fifo.py), block-semantics state."""

from __future__ import annotations

from collections import OrderedDict

from prefix_study.cluster.caches import register_cache
from prefix_study.cluster.caches._base import BlockStateCache, CacheContext, NO_CONTEXT
from prefix_study.replay.kernels.s3fifo import GHOST_RATIO, MOVE_TO_MAIN_THRESHOLD, SMALL_RATIO


@register_cache("s3fifo")
class S3FifoCache(BlockStateCache):
    """Small, main and ghost FIFOs as OrderedDicts (oldest first);
    `cached`: id -> its frequency counter (small or main)."""

    cached: dict[int, int]

    def __init__(self, capacity: int, context: CacheContext = NO_CONTEXT):
        super().__init__(capacity, context)
        self.small_cap = max(1, int(capacity * SMALL_RATIO))
        self.main_cap = capacity - self.small_cap
        self.ghost_cap = int(capacity * GHOST_RATIO)
        self.small: OrderedDict[int, None] = OrderedDict()
        self.main: OrderedDict[int, None] = OrderedDict()
        self.ghost: OrderedDict[int, None] = OrderedDict()
        self.has_evicted = False

    def access(self, x: int, position: int) -> None:
        freq = self.cached
        if x in freq:
            if freq[x] < 127:
                freq[x] += 1
            return
        small, main, ghost = self.small, self.main, self.ghost
        hit_on_ghost = x in ghost
        if hit_on_ghost:
            del ghost[x]
        while len(small) + len(main) + 1 > self.capacity:
            self.has_evicted = True
            if len(main) > self.main_cap or not small:
                while main:  # reinsert while the counter is non-zero
                    t, _ = main.popitem(last=False)
                    if freq[t] >= 1:
                        freq[t] = min(freq[t], 3) - 1
                        main[t] = None
                    else:
                        del freq[t]
                        break
            else:
                while small:  # promote hot blocks, drop one cold to ghost
                    t, _ = small.popitem(last=False)
                    if freq[t] >= MOVE_TO_MAIN_THRESHOLD:
                        freq[t] = 0
                        main[t] = None
                    else:
                        del freq[t]
                        if self.ghost_cap > 0:
                            while len(ghost) + 1 > self.ghost_cap:
                                ghost.popitem(last=False)
                            ghost[t] = None
                        break
        freq[x] = 0
        if hit_on_ghost or (not self.has_evicted and len(small) >= self.small_cap):
            main[x] = None
        else:
            small[x] = None

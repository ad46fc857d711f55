"""`twoq`: 2Q (kernels/twoq.py), block-semantics state."""

from __future__ import annotations

from collections import OrderedDict

from prefix_study.cluster.caches import register_cache
from prefix_study.cluster.caches._base import BlockStateCache, CacheContext, NO_CONTEXT
from prefix_study.replay.kernels.twoq import IN_RATIO, OUT_RATIO

_IN, _AM = 1, 3


@register_cache("twoq")
class TwoQCache(BlockStateCache):
    """A1in (FIFO), A1out (ghost FIFO) and Am (LRU) as OrderedDicts, oldest
    first; `cached`: id -> A1in/Am."""

    cached: dict[int, int]

    def __init__(self, capacity: int, context: CacheContext = NO_CONTEXT):
        super().__init__(capacity, context)
        self.in_cap = max(1, int(capacity * IN_RATIO))
        self.out_cap = int(capacity * OUT_RATIO)
        self.am_cap = capacity - self.in_cap
        self.a1in: OrderedDict[int, None] = OrderedDict()
        self.a1out: OrderedDict[int, None] = OrderedDict()
        self.am: OrderedDict[int, None] = OrderedDict()

    def access(self, x: int, position: int) -> None:
        cached, a1in, a1out, am = self.cached, self.a1in, self.a1out, self.am
        w = cached.get(x)
        if w == _IN:
            return
        if w == _AM:
            am.move_to_end(x)
            return
        ghost = x in a1out
        if ghost:
            del a1out[x]
        while len(a1in) + len(am) + 1 > self.capacity:
            if len(a1in) > self.in_cap or not am:
                v, _ = a1in.popitem(last=False)
                del cached[v]
                if self.out_cap > 0:
                    while len(a1out) + 1 > self.out_cap:
                        a1out.popitem(last=False)
                    a1out[v] = None
            else:
                v, _ = am.popitem(last=False)
                del cached[v]
        if ghost and self.am_cap > 0:
            while len(am) + 1 > self.am_cap:
                v, _ = am.popitem(last=False)
                del cached[v]
            am[x] = None
            cached[x] = _AM
        else:
            a1in[x] = None
            cached[x] = _IN

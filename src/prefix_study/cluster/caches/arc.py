"""`arc`: ARC (kernels/arc.py), block-semantics state."""

from __future__ import annotations

from collections import OrderedDict

from prefix_study.cluster.caches import register_cache
from prefix_study.cluster.caches._base import BlockStateCache, CacheContext, NO_CONTEXT

_T1, _T2, _B1, _B2 = 1, 2, 3, 4


@register_cache("arc")
class ArcCache(BlockStateCache):
    """T1, T2, B1, B2 as OrderedDicts (LRU first); `cached`: id -> T1/T2,
    `ghosts`: id -> B1/B2; p the adaptive target size of T1."""

    cached: dict[int, int]

    def __init__(self, capacity: int, context: CacheContext = NO_CONTEXT):
        super().__init__(capacity, context)
        self.ghosts: dict[int, int] = {}
        self.lists = {k: OrderedDict() for k in (_T1, _T2, _B1, _B2)}
        self.p = 0.0

    def _move(self, x: int, src: int, dst: int) -> None:
        del self.lists[src][x]
        self.lists[dst][x] = None

    def access(self, x: int, position: int) -> None:
        cached, ghosts = self.cached, self.ghosts
        t1, t2, b1, b2 = (self.lists[k] for k in (_T1, _T2, _B1, _B2))
        w = cached.get(x)
        if w is not None:
            if w == _T1:
                self._move(x, _T1, _T2)
                cached[x] = _T2
            else:
                t2.move_to_end(x)
            return
        g = ghosts.pop(x, None)
        in_b1, in_b2 = g == _B1, g == _B2
        cap = self.capacity
        if in_b1:
            self.p = min(self.p + max(len(b2) / len(b1), 1.0), float(cap))
            del b1[x]
        elif in_b2:
            self.p = max(self.p - max(len(b1) / len(b2), 1.0), 0.0)
            del b2[x]
        if len(t1) + len(t2) + 1 > cap:
            replace = True
            if not (in_b1 or in_b2):
                if len(t1) + len(b1) + 1 > cap:
                    if b1:
                        v, _ = b1.popitem(last=False)
                        del ghosts[v]
                    else:  # drop T1's LRU without a ghost
                        v, _ = t1.popitem(last=False)
                        del cached[v]
                        replace = False
                elif len(t1) + len(b1) + len(t2) + len(b2) >= 2 * cap and b2:
                    v, _ = b2.popitem(last=False)
                    del ghosts[v]
            if replace:
                n1 = len(t1)
                if (n1 > 0 and (n1 > self.p or (n1 == self.p and in_b2))) or not t2:
                    v, _ = t1.popitem(last=False)
                    b1[v] = None
                    ghosts[v] = _B1
                else:
                    v, _ = t2.popitem(last=False)
                    b2[v] = None
                    ghosts[v] = _B2
                del cached[v]
        if in_b1 or in_b2:
            t2[x] = None
            cached[x] = _T2
        else:
            t1[x] = None
            cached[x] = _T1

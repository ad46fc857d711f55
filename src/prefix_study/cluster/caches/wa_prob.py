"""`wa_prob`: the ATC'25 workload-aware policy (kernels/wa_prob.py),
block-semantics state; the reuse score and lifespan average come from the
kernel's module."""

from __future__ import annotations

from prefix_study.cluster.caches import register_cache
from prefix_study.cluster.caches._base import BlockStateCache, CacheContext, NO_CONTEXT
from prefix_study.replay.kernels.wa_prob import LIFESPAN_EMA, _score


@register_cache("wa_prob")
class WorkloadAwareProbCache(BlockStateCache):
    """One LRU list per category, linked through `nxt`/`prv` (category k's
    sentinel is -1-k; nxt[sentinel] most recent, prv[sentinel] least);
    per-category reuse statistics learnt online; time is requests served.
    `cached`: cached ids. `cat_of` and `last_req` outlive eviction, as the
    kernel's arrays do."""

    cached: dict[int, None]

    def __init__(self, capacity: int, context: CacheContext = NO_CONTEXT):
        super().__init__(capacity, context)
        k = self.num_categories = int(context.num_categories)
        self.nxt: dict[int, int] = {-1 - j: -1 - j for j in range(k)}
        self.prv: dict[int, int] = dict(self.nxt)
        self.in_list = [0] * k
        self.cat_of: dict[int, int] = {}
        self.last_req: dict[int, int] = {}
        self.accesses = [0.0] * k
        self.reuses = [0.0] * k
        self.interval_sum = [0.0] * k
        self.all_reuses = 0.0
        self.all_interval = 0.0
        self.lifespan = -1.0
        self.req = -1
        self.anchor = -1  # the current request's last placed block
        self.category = 0

    def begin(self, category: int) -> None:
        if not 0 <= category < self.num_categories:
            raise ValueError(f"category {category} outside 0..{self.num_categories - 1}")
        self.req += 1
        self.anchor = -1
        self.category = category

    def _unlink(self, x: int) -> None:
        nxt, prv = self.nxt, self.prv
        p, q = prv.pop(x), nxt.pop(x)
        nxt[p] = q
        prv[q] = p
        self.in_list[self.cat_of[x]] -= 1

    def _victim(self) -> int:
        prior_mean = (self.all_interval + 1.0) / (self.all_reuses + 1.0)
        best, best_score = -1, 0.0
        for j in range(self.num_categories):
            if self.in_list[j] == 0:
                continue
            v = self.prv[-1 - j]
            p = (self.reuses[j] + 1.0) / (self.accesses[j] + 2.0)
            mean = (self.interval_sum[j] + prior_mean) / (self.reuses[j] + 1.0)
            lam = 1.0 / max(mean, 1e-9)
            life = self.lifespan if self.lifespan > 0.0 else 1.0 / lam
            s = _score(p, lam, float(self.req - self.last_req[v]), life)
            if best < 0 or s < best_score:
                best, best_score = v, s
        return best

    def access(self, x: int, position: int) -> None:
        k, req, cached, cat_of, last_req = self.category, self.req, self.cached, self.cat_of, self.last_req
        self.accesses[k] += 1.0
        last = last_req.get(x, -1)
        if last >= 0:
            gap = float(req - last)
            kk = cat_of[x]
            self.reuses[kk] += 1.0
            self.interval_sum[kk] += gap
            self.all_reuses += 1.0
            self.all_interval += gap
        last_req[x] = req
        if x in cached:
            self._unlink(x)
        else:
            if len(cached) == self.capacity:
                v = self._victim()
                age = max(float(req - last_req[v]), 1.0)
                self.lifespan = age if self.lifespan < 0.0 else self.lifespan + LIFESPAN_EMA * (age - self.lifespan)
                self._unlink(v)
                del cached[v]
            cached[x] = None
        # Place x right behind the request's previous block (a request's tail
        # nearer the LRU end than its head), else at the category's MRU end.
        a = self.anchor
        if not (a >= 0 and a != x and a in cached and cat_of[a] == k):
            a = -1 - k
        nxt, prv = self.nxt, self.prv
        q = nxt[a]
        nxt[a] = x
        prv[x] = a
        nxt[x] = q
        prv[q] = x
        cat_of[x] = k
        self.in_list[k] += 1
        self.anchor = x

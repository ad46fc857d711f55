"""`sglang_cache_aware`: SGLang router's cache-aware load balancing
(sgl-project/sglang sgl-router/src/policies/cache_aware.rs).

Loads are the requests in flight per replica. If the cluster is imbalanced,
(max - min) > balance_abs_threshold and max > min * balance_rel_threshold,
the request goes to the least-loaded replica (first of ties). Otherwise to the
replica with the longest prefix match if the match ratio (matched / prompt
blocks) exceeds cache_threshold (strictly, as the source), else to the
replica whose cache ("tree") is smallest. SGLang matches characters of the
request text; here blocks of the prompt. Ties of the best match and of the
smallest tree fall in hash-map order in the source (tree.rs); here at random
(seeded). Full vLLM caches all have the capacity's size, so `precise` then
spreads non-matching requests at random.

`precise`: matches and cache sizes from the replicas' caches. `approximate`:
SGLang's own approximate tree of routed prompts per replica, cut every
eviction_interval_secs to max_tree_size entries by least recent use (SGLang
counts characters, here blocks). Parameters: conf/router/sglang_cache_aware.yaml.
"""

from __future__ import annotations

from prefix_study.cluster.approx_index import ApproxPrefixIndex
from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router, overrode_affinity


@register_router("sglang_cache_aware")
class SglangCacheAwareRouter(Router):
    prefix_aware = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        p = self.params
        self.cache_threshold = float(p["cache_threshold"])
        self.abs_threshold = int(p["balance_abs_threshold"])
        self.rel_threshold = float(p["balance_rel_threshold"])
        self.index = None
        if self.variant == "approximate":
            self.index = ApproxPrefixIndex(self.n, trim_interval_s=float(p["eviction_interval_secs"]),
                                           trim_size=int(p["max_tree_size"]))

    def choose(self, i, cluster):
        req = cluster.requests
        loads = [q.in_flight() for q in cluster.queues]
        hi, lo = max(loads), min(loads)
        if self.index is None:
            overlaps = cluster.exact_overlaps(i)
        else:
            self.index.refresh(cluster.now)
            overlaps = self.index.overlaps(req.blocks[i], req.n_lookup[i])
        if hi - lo > self.abs_threshold and hi > lo * self.rel_threshold:
            chosen = loads.index(lo)
            return chosen, overrode_affinity(overlaps, chosen)
        best = self.argmax_random_ties(overlaps)
        n = req.n_lookup[i]
        match_rate = overlaps[best] / n if n else 0.0
        if match_rate > self.cache_threshold:
            return best, False
        if self.index is None:
            sizes = cluster.caches.sizes()
        else:
            sizes = [self.index.size(r) for r in range(self.n)]
        return self.argmin_random_ties(sizes), False

    def routed(self, i, replica, cluster):
        if self.index is not None:
            req = cluster.requests
            self.index.insert(replica, req.blocks[i][: req.n_lookup[i]], cluster.now)

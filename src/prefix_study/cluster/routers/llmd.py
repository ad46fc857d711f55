"""`llmd`: the llm-d inference scheduler's weighted scorers and max-score picker
(llm-d/llm-d-inference-scheduler, pkg/epp/framework/plugins/scheduling/scorer/).

score(w) = prefix_weight * matched_blocks / prompt_blocks        (prefix / precise-prefix-cache-scorer)
         + kv_cache_utilization_weight * (1 - KV usage of w)    (kv-cache-utilization-scorer)
         + queue_weight * (max_wait - wait(w)) / (max_wait - min_wait)  (queue-scorer; 1 if all equal)

and the highest score wins (ties at random, as max-score-picker). KV usage is
the running requests' KV blocks over the replica's capacity; wait is the
replica's waiting-queue length.

`precise`: matches from the replicas' caches (precise-prefix-cache-scorer fed
by KV events). `approximate`: llm-d's approx-prefix-cache-producer, an LRU of
routed prompt blocks per replica of lru_capacity_per_server blocks (0: the
replica's capacity, as autoTune reads it from the engine), matched the way
its matchLongestPrefix does (walk while any replica holds the block).
Parameters: conf/router/llmd.yaml.
"""

from __future__ import annotations

from prefix_study.cluster.approx_index import ApproxPrefixIndex
from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router, overrode_affinity


@register_router("llmd")
class LlmdRouter(Router):
    prefix_aware = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        p = self.params
        self.w_prefix = float(p["prefix_weight"])
        self.w_kv = float(p["kv_cache_utilization_weight"])
        self.w_queue = float(p["queue_weight"])
        self.index = None
        if self.variant == "approximate":
            cap = int(p["lru_capacity_per_server"]) or self.capacity_blocks
            self.index = ApproxPrefixIndex(self.n, lru_capacity=cap)

    def choose(self, i, cluster):
        req = cluster.requests
        n = req.n_lookup[i]
        if self.index is None:
            overlaps = cluster.exact_overlaps(i)
        else:
            overlaps = self.index.any_replica_run(req.blocks[i], n)
        waits = [q.waiting_requests() for q in cluster.queues]
        wmax, wmin = max(waits), min(waits)
        cap_tokens = max(1, self.capacity_blocks * req.block_size)
        scores = []
        for w, q in enumerate(cluster.queues):
            prefix = overlaps[w] / n if n else 0.0
            usage = min(1.0, q.running_tokens() / cap_tokens)
            queue = 1.0 if wmax == wmin else (wmax - waits[w]) / (wmax - wmin)
            scores.append(self.w_prefix * prefix + self.w_kv * (1.0 - usage) + self.w_queue * queue)
        chosen = self.argmax_random_ties(scores)
        return chosen, overrode_affinity(overlaps, chosen)

    def routed(self, i, replica, cluster):
        if self.index is not None:
            req = cluster.requests
            self.index.insert(replica, req.blocks[i][: req.n_lookup[i]], cluster.now)

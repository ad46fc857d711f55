"""`dynamo_kv`: NVIDIA Dynamo's KV router cost.

For each replica w (ai-dynamo/dynamo lib/kv-router/src/scheduling/selector.rs,
DefaultWorkerSelector::select_worker):

    prefill_blocks = (prefill tokens outstanding on w + the request's tokens
                      not cached on w) / block_size
    decode_blocks  = blocks of w's active requests + the request's blocks
    cost = overlap_score_weight * prefill_blocks + decode_blocks

and the lowest cost wins (ties at random; with router_temperature > 0 a
softmax sample over costs normalised to [0, 1], as the source does). Dynamo
counts active blocks once per distinct block hash; here they are the active
requests' tokens / block_size (shared prefixes counted per request).

`precise` reads overlaps from the replicas' caches (Dynamo's KvIndexer fed by
KV events); `approximate` from Dynamo's ApproxKvIndexer model: the prompt
blocks it routed, each forgotten `ttl_s` after it was last routed, at most
`max_tree_size` entries (lib/llm/src/kv_router/approx.rs).
Parameters: conf/router/dynamo_kv.yaml.
"""

from __future__ import annotations

import math

from prefix_study.cluster.approx_index import ApproxPrefixIndex
from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router, overrode_affinity


@register_router("dynamo_kv")
class DynamoKvRouter(Router):
    prefix_aware = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        p = self.params
        self.weight = float(p["overlap_score_weight"])
        self.temperature = float(p["router_temperature"])
        self.index = None
        if self.variant == "approximate":
            self.index = ApproxPrefixIndex(self.n, ttl_s=float(p["router_ttl_secs"]),
                                           max_entries=int(p["router_max_tree_size"]),
                                           prune_target_ratio=float(p["router_prune_target_ratio"]))

    def _overlaps(self, i, cluster):
        req = cluster.requests
        if self.index is None:
            return cluster.exact_overlaps(i)
        self.index.refresh(cluster.now)
        return self.index.overlaps(req.blocks[i], req.n_lookup[i])

    def choose(self, i, cluster):
        req = cluster.requests
        bs = req.block_size
        isl = req.prompt_tokens[i]
        request_blocks = math.ceil(isl / bs)
        overlaps = self._overlaps(i, cluster)
        t = cluster.now
        costs = []
        for w, q in enumerate(cluster.queues):
            new_tokens = max(0, isl - overlaps[w] * bs)
            prefill_blocks = (q.outstanding_prefill_tokens(t) + new_tokens) / bs
            decode_blocks = q.active_tokens() / bs + request_blocks
            costs.append(self.weight * prefill_blocks + decode_blocks)
        if self.temperature > 0:
            chosen = self._softmax_sample(costs)
        else:
            chosen = self.argmin_random_ties(costs)
        return chosen, overrode_affinity(overlaps, chosen)

    def _softmax_sample(self, costs):
        lo, hi = min(costs), max(costs)
        if lo == hi:
            return self.rng.randrange(len(costs))
        weights = [math.exp(-(c - lo) / ((hi - lo) * self.temperature)) for c in costs]
        return self.rng.choices(range(len(costs)), weights=weights)[0]

    def routed(self, i, replica, cluster):
        if self.index is not None:
            req = cluster.requests
            # Later blocks first: Dynamo prunes the later positions of equal expiry first.
            self.index.insert(replica, req.blocks[i][: req.n_lookup[i]], cluster.now, tail_first=True)

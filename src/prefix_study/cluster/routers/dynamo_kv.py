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

import numpy as np

from prefix_study.cluster import approx_index
from prefix_study.cluster.queue import active_tokens, outstanding_prefill_tokens
from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router
from prefix_study.cluster.routers._pick import (argmin_random_ties, choice_weighted, overrode_affinity, randrange,
                                                rng_state)
from prefix_study.replay.kernels._common import jit

# settings[...] of the state.
WEIGHT, TEMPERATURE, APPROXIMATE, BLOCK_SIZE = range(4)


@jit
def choose(state, queues, exact, sizes, i, now):
    settings, mt, prompt, n_lookup, start, ids, costs, scratch, believed, index = state
    bs = int(settings[BLOCK_SIZE])
    isl = prompt[i]
    request_blocks = -(-isl // bs)
    overlaps = exact
    if settings[APPROXIMATE]:
        approx_index.refresh(index, now)
        overlaps = approx_index.overlaps(index, ids, start[i], n_lookup[i], believed)
    for w in range(costs.shape[0]):
        new_tokens = max(0, isl - overlaps[w] * bs)
        prefill_blocks = (outstanding_prefill_tokens(queues, w, now) + new_tokens) / bs
        decode_blocks = active_tokens(queues, w) / bs + request_blocks
        costs[w] = settings[WEIGHT] * prefill_blocks + decode_blocks
    temperature = settings[TEMPERATURE]
    if temperature > 0:
        lo, hi = costs.min(), costs.max()
        if lo == hi:
            chosen = randrange(mt, costs.shape[0])
        else:  # a softmax sample over costs normalised to [0, 1]
            weights = np.empty_like(costs)
            for w in range(costs.shape[0]):
                weights[w] = math.exp(-(costs[w] - lo) / ((hi - lo) * temperature))
            chosen = choice_weighted(mt, weights)
    else:
        chosen = argmin_random_ties(mt, costs, scratch)
    return chosen, overrode_affinity(overlaps, chosen)


@jit
def routed(state, i, replica, now):
    settings, n_lookup, start, ids, index = state[0], state[3], state[4], state[5], state[9]
    if settings[APPROXIMATE]:
        # Later blocks first: Dynamo prunes the later positions of equal expiry first.
        approx_index.insert(index, replica, ids, start[i], n_lookup[i], now, True)


@register_router("dynamo_kv")
class DynamoKvRouter(Router):
    prefix_aware = True
    choose = staticmethod(choose)
    routed = staticmethod(routed)

    def state(self, requests):
        p = self.params
        approximate = self.variant == "approximate"
        settings = np.array([float(p["overlap_score_weight"]), float(p["router_temperature"]), approximate,
                             self.block_size], dtype=np.float64)
        index = approx_index.approx_index(
            self.n, requests.num_ids if approximate else 0, ttl_s=float(p["router_ttl_secs"]),
            max_entries=int(p["router_max_tree_size"]), prune_target_ratio=float(p["router_prune_target_ratio"]))
        return (settings, rng_state(self.name, self.seed), requests.prompt_array, requests.lookup_array,
                requests.start_array, requests.trace.ids, np.zeros(self.n), np.zeros(self.n, dtype=np.int64),
                np.zeros(self.n, dtype=np.int64), index)

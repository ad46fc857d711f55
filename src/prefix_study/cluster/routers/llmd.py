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

import numpy as np

from prefix_study.cluster import approx_index
from prefix_study.cluster.queue import running_tokens, waiting_requests
from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router
from prefix_study.cluster.routers._pick import argmax_random_ties, overrode_affinity, rng_state
from prefix_study.replay.kernels._common import jit

# settings[...] of the state.
W_PREFIX, W_KV, W_QUEUE, APPROXIMATE, CAPACITY_TOKENS = range(5)


@jit
def choose(state, queues, exact, sizes, i, now):
    settings, mt, n_lookup, start, ids, scores, waits, scratch, believed, index = state
    n = n_lookup[i]
    overlaps = exact
    if settings[APPROXIMATE]:
        overlaps = approx_index.any_replica_run(index, ids, start[i], n, believed)
    for w in range(waits.shape[0]):
        waits[w] = waiting_requests(queues, w)
    wmax, wmin = waits.max(), waits.min()
    cap_tokens = settings[CAPACITY_TOKENS]
    for w in range(scores.shape[0]):
        prefix = overlaps[w] / n if n else 0.0
        usage = min(1.0, running_tokens(queues, w) / cap_tokens)
        queue = 1.0 if wmax == wmin else (wmax - waits[w]) / (wmax - wmin)
        scores[w] = settings[W_PREFIX] * prefix + settings[W_KV] * (1.0 - usage) + settings[W_QUEUE] * queue
    chosen = argmax_random_ties(mt, scores, scratch)
    return chosen, overrode_affinity(overlaps, chosen)


@jit
def routed(state, i, replica, now):
    settings, n_lookup, start, ids, index = state[0], state[2], state[3], state[4], state[9]
    if settings[APPROXIMATE]:
        approx_index.insert(index, replica, ids, start[i], n_lookup[i], now, False)


@register_router("llmd")
class LlmdRouter(Router):
    prefix_aware = True
    choose = staticmethod(choose)
    routed = staticmethod(routed)

    def state(self, requests):
        p = self.params
        approximate = self.variant == "approximate"
        settings = np.array([float(p["prefix_weight"]), float(p["kv_cache_utilization_weight"]),
                             float(p["queue_weight"]), approximate,
                             max(1, self.capacity_blocks * self.block_size)], dtype=np.float64)
        cap = int(p["lru_capacity_per_server"]) or self.capacity_blocks
        index = approx_index.approx_index(self.n, requests.num_ids if approximate else 0, lru_capacity=cap)
        return (settings, rng_state(self.name, self.seed), requests.lookup_array, requests.start_array,
                requests.trace.ids, np.zeros(self.n), np.zeros(self.n, dtype=np.int64),
                np.zeros(self.n, dtype=np.int64), np.zeros(self.n, dtype=np.int64), index)

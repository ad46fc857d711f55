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

import numpy as np

from prefix_study.cluster import approx_index
from prefix_study.cluster.queue import in_flight
from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router
from prefix_study.cluster.routers._pick import (argmax_random_ties, argmin_random_ties, overrode_affinity,
                                                rng_state)
from prefix_study.replay.kernels._common import jit

# settings[...] of the state.
CACHE_THRESHOLD, ABS_THRESHOLD, REL_THRESHOLD, APPROXIMATE = range(4)


@jit
def choose(state, queues, exact, sizes, i, now):
    settings, mt, n_lookup, start, ids, loads, scratch, believed, tree_sizes, index = state
    for w in range(loads.shape[0]):
        loads[w] = in_flight(queues, w)
    hi, lo = loads.max(), loads.min()
    overlaps = exact
    if settings[APPROXIMATE]:
        approx_index.refresh(index, now)
        overlaps = approx_index.overlaps(index, ids, start[i], n_lookup[i], believed)
    if hi - lo > settings[ABS_THRESHOLD] and hi > lo * settings[REL_THRESHOLD]:
        chosen = np.argmin(loads)  # the first least-loaded replica
        return chosen, overrode_affinity(overlaps, chosen)
    best = argmax_random_ties(mt, overlaps, scratch)
    n = n_lookup[i]
    match_rate = overlaps[best] / n if n else 0.0
    if match_rate > settings[CACHE_THRESHOLD]:
        return best, 0
    if settings[APPROXIMATE]:
        sizes = approx_index.sizes(index, tree_sizes)
    return argmin_random_ties(mt, sizes, scratch), 0


@jit
def routed(state, i, replica, now):
    settings, n_lookup, start, ids, index = state[0], state[2], state[3], state[4], state[9]
    if settings[APPROXIMATE]:
        approx_index.insert(index, replica, ids, start[i], n_lookup[i], now, False)


@register_router("sglang_cache_aware")
class SglangCacheAwareRouter(Router):
    prefix_aware = True
    choose = staticmethod(choose)
    routed = staticmethod(routed)

    def state(self, requests):
        p = self.params
        approximate = self.variant == "approximate"
        settings = np.array([float(p["cache_threshold"]), int(p["balance_abs_threshold"]),
                             float(p["balance_rel_threshold"]), approximate], dtype=np.float64)
        index = approx_index.approx_index(self.n, requests.num_ids if approximate else 0,
                                          trim_interval_s=float(p["eviction_interval_secs"]),
                                          trim_size=int(p["max_tree_size"]))
        return (settings, rng_state(self.name, self.seed), requests.lookup_array, requests.start_array,
                requests.trace.ids, np.zeros(self.n, dtype=np.int64), np.zeros(self.n, dtype=np.int64),
                np.zeros(self.n, dtype=np.int64), np.zeros(self.n, dtype=np.int64), index)

"""`least_loaded`: the replica with the fewest outstanding prefill tokens
(uncached prompt tokens routed there and not yet prefilled); ties at random."""

from __future__ import annotations

import numpy as np

from prefix_study.cluster.queue import outstanding_prefill_tokens
from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router
from prefix_study.cluster.routers._pick import argmin_random_ties, rng_state
from prefix_study.replay.kernels._common import jit


@jit
def choose(state, queues, exact, sizes, i, now):
    mt, load, ties = state
    for r in range(load.shape[0]):
        load[r] = outstanding_prefill_tokens(queues, r, now)
    return argmin_random_ties(mt, load, ties), -1


@register_router("least_loaded")
class LeastLoadedRouter(Router):
    choose = staticmethod(choose)

    def state(self, requests):
        return rng_state(self.name, self.seed), np.zeros(self.n, dtype=np.int64), np.zeros(self.n, dtype=np.int64)

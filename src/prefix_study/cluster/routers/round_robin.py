"""`round_robin`: replicas in turn."""

from __future__ import annotations

import numpy as np

from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router
from prefix_study.replay.kernels._common import jit


@jit
def choose(state, queues, exact, sizes, i, now):
    nxt = state[0]
    r = nxt[0]
    nxt[0] = (r + 1) % exact.shape[0]
    return r, -1


@register_router("round_robin")
class RoundRobinRouter(Router):
    choose = staticmethod(choose)

    def state(self, requests):
        return (np.zeros(1, dtype=np.int64),)

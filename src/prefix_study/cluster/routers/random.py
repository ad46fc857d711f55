"""`random`: a uniformly random replica (seeded)."""

from __future__ import annotations

from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router
from prefix_study.cluster.routers._pick import randrange, rng_state
from prefix_study.replay.kernels._common import jit


@jit
def choose(state, queues, exact, sizes, i, now):
    return randrange(state[0], exact.shape[0]), -1


@register_router("random")
class RandomRouter(Router):
    choose = staticmethod(choose)

    def state(self, requests):
        return (rng_state(self.name, self.seed),)

"""`random`: a uniformly random replica (seeded)."""

from __future__ import annotations

from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router


@register_router("random")
class RandomRouter(Router):
    def choose(self, i, cluster):
        return self.rng.randrange(self.n), None

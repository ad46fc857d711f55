"""`least_loaded`: the replica with the fewest outstanding prefill tokens
(uncached prompt tokens routed there and not yet prefilled); ties at random."""

from __future__ import annotations

from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router


@register_router("least_loaded")
class LeastLoadedRouter(Router):
    def choose(self, i, cluster):
        t = cluster.now
        return self.argmin_random_ties([q.outstanding_prefill_tokens(t) for q in cluster.queues]), None

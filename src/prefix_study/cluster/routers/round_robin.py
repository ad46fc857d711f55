"""`round_robin`: replicas in turn."""

from __future__ import annotations

from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router


@register_router("round_robin")
class RoundRobinRouter(Router):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.next = 0

    def choose(self, i, cluster):
        r = self.next
        self.next = (r + 1) % self.n
        return r, None

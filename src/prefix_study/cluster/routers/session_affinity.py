"""`session_affinity`: a consistent hash ring over the replicas.

`key: conversation` hashes the request's conversation (session) id, or its
first block when the trace has no conversations (external traces);
`key: first_block` always hashes the first block (requests that share a
system prompt or a document land together). Each replica owns
`virtual_nodes` points of a 64-bit ring (blake2b, independent of
PYTHONHASHSEED); a key goes to the first point at or after it, so adding a
replica moves only the keys that land on its points.
"""

from __future__ import annotations

import bisect

from prefix_study.cluster.requests import first_block_key, stable_key
from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router


@register_router("session_affinity")
class SessionAffinityRouter(Router):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        vnodes = int(self.params.get("virtual_nodes", 100))
        points = sorted((stable_key(f"replica-{r}-vnode-{v}"), r) for r in range(self.n) for v in range(vnodes))
        self.ring_keys = [p for p, _ in points]
        self.ring_owner = [r for _, r in points]
        self.first_block = self.params.get("key", "conversation") == "first_block"

    def choose(self, i, cluster):
        req = cluster.requests
        key = first_block_key(req.blocks[i]) if self.first_block else req.session_key[i]
        j = bisect.bisect_left(self.ring_keys, key)
        return self.ring_owner[j % len(self.ring_owner)], None

"""`session_affinity`: a consistent hash ring over the replicas.

`key: conversation` hashes the request's conversation (session) id, or its
first block when the trace has no conversations (external traces);
`key: first_block` always hashes the first block (requests that share a
system prompt or a document land together). Each replica owns
`virtual_nodes` points of a 64-bit ring (blake2b, independent of
PYTHONHASHSEED); a key goes to the first point at or after it, so adding a
replica moves only the keys that land on its points. The choice depends on
the request alone, so every request's replica is looked up on the ring
before the simulation starts.
"""

from __future__ import annotations

import numpy as np

from prefix_study.cluster.requests import first_block_key, stable_key
from prefix_study.cluster.routers import register_router
from prefix_study.cluster.routers._base import Router
from prefix_study.replay.kernels._common import jit


@jit
def choose(state, queues, exact, sizes, i, now):
    return state[0][i], -1


@register_router("session_affinity")
class SessionAffinityRouter(Router):
    choose = staticmethod(choose)

    def state(self, requests):
        vnodes = int(self.params.get("virtual_nodes", 100))
        points = sorted((stable_key(f"replica-{r}-vnode-{v}"), r) for r in range(self.n) for v in range(vnodes))
        ring_keys = np.array([p for p, _ in points], dtype=np.uint64)
        ring_owner = np.array([r for _, r in points], dtype=np.int64)
        if self.params.get("key", "conversation") == "first_block":
            keys = [first_block_key(b) for b in requests.blocks]
        else:
            keys = requests.session_key
        j = np.searchsorted(ring_keys, np.array(keys, dtype=np.uint64), side="left")
        return (ring_owner[j % len(ring_owner)],)

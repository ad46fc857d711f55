"""FIFO: evict in insertion order; hits change nothing (libCacheSim's FIFO).

Under prefix semantics a block's insertion time is when it was last computed
(first miss after it was evicted); prefix hits do not refresh it, so a shared
head block inserted long ago is evicted before the tails that depend on it.
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import count_hit, jit
from prefix_study.replay.policies import register_policy


@register_policy("fifo", "First in, first out: evict the oldest insertion; hits do not reorder.")
@jit
def fifo(ids, flags, capacity, num_ids, prefix, next_use):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    cap = min(capacity, num_ids)  # more slots than ids can never fill
    if cap <= 0:
        return hits
    ring = np.empty(cap, dtype=np.int32)
    cached = np.zeros(num_ids, dtype=np.bool_)
    head = 0  # next slot to write = oldest entry once full
    size = 0
    run = True
    for i in range(n):
        x = ids[i]
        c = cached[x]
        h, run = count_hit(c, flags[i], run, prefix)
        hits[i] = h
        if not c:
            if size == cap:
                cached[ring[head]] = False
            else:
                size += 1
            ring[head] = x
            head += 1
            if head == cap:
                head = 0
            cached[x] = True
    return hits

"""SIEVE (Zhang et al., NSDI'24), as libCacheSim's Sieve.c.

New blocks enter at the queue head with visited=0; a hit sets visited=1. The
hand walks from the tail toward the head, clearing visited bits, and evicts
the first unvisited block; it wraps to the tail at the head.
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import count_hit, jit
from prefix_study.replay.policies import register_policy


@register_policy("sieve", "SIEVE: FIFO queue with a visited bit and a moving hand (lazy promotion).")
@jit
def sieve(ids, flags, capacity, num_ids, prefix, next_use):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    newer = np.full(num_ids, -1, dtype=np.int32)  # toward the head
    older = np.full(num_ids, -1, dtype=np.int32)  # toward the tail
    visited = np.zeros(num_ids, dtype=np.bool_)
    cached = np.zeros(num_ids, dtype=np.bool_)
    head = -1
    tail = -1
    hand = -1
    size = 0
    run = True
    for i in range(n):
        x = ids[i]
        c = cached[x]
        h, run = count_hit(c, flags[i], run, prefix)
        hits[i] = h
        if c:
            visited[x] = True
            continue
        if size == capacity:
            v = hand if hand != -1 else tail
            while visited[v]:
                visited[v] = False
                v = newer[v] if newer[v] != -1 else tail
            hand = newer[v]
            # unlink v
            o = older[v]
            w = newer[v]
            if o != -1:
                newer[o] = w
            else:
                tail = w
            if w != -1:
                older[w] = o
            else:
                head = o
            cached[v] = False
        else:
            size += 1
        # insert x at the head
        older[x] = head
        newer[x] = -1
        if head != -1:
            newer[head] = x
        else:
            tail = x
        head = x
        visited[x] = False
        cached[x] = True
    return hits

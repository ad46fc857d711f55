"""SIEVE (Zhang et al., NSDI'24), as libCacheSim's Sieve.c.

New blocks enter at the queue head with visited=0; a hit sets visited=1. The
hand walks from the tail toward the head, clearing visited bits, and evicts
the first unvisited block; it wraps to the tail at the head.
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import jit, record_hit, serve_jit
from prefix_study.replay.kernels._serve import specialise
from prefix_study.replay.policies import register_policy


@jit
def init(capacity, num_ids, num_accesses, num_categories):
    regs = np.zeros(5, dtype=np.int64)  # size, capacity, head, tail, hand
    regs[1] = capacity
    regs[2:5] = -1
    return (regs,
            np.full(num_ids, -1, dtype=np.int32),  # newer: toward the head
            np.full(num_ids, -1, dtype=np.int32),  # older: toward the tail
            np.zeros(num_ids, dtype=np.bool_),     # visited
            np.zeros(num_ids, dtype=np.bool_))     # cached


@jit
def contains(state, x):
    return state[4][x]


@serve_jit
def serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, newer, older, visited, cached = state
    capacity = regs[1]
    if capacity <= 0:
        return 0, 0
    size = regs[0]
    head = regs[2]
    tail = regs[3]
    hand = regs[4]
    nh = 0
    ne = 0
    run = True
    for i in range(s, e):
        x = ids[i]
        f = flags[i]
        c = cached[x]
        run, nh = record_hit(hits, i, c, f, run, prefix, nh)
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
            if ne < evicted.shape[0]:
                evicted[ne] = v
            ne += 1
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
    regs[0] = size
    regs[2] = head
    regs[3] = tail
    regs[4] = hand
    return nh, ne


register_policy("sieve", "SIEVE: FIFO queue with a visited bit and a moving hand (lazy promotion).",
                specialise(init, serve, contains, __file__))

"""`cost_lru`: prefix-aware, cost-weighted LRU (GreedyDual over prefix-tree leaves).

A cached block is worth its recompute cost, and that cost grows with the
block's position (attention covers every earlier token; simulate.py's
`recompute_cost`: the cost model's prefill time of the block after its
prefix where the caller configures one, as the replay stage does, else the
stand-in 1 + position). GreedyDual (Young 1994; Cao & Irani's GreedyDual-Size with
unit size) turns costs into an LRU-like policy: on insertion and on every
hit a block's value is H = L + cost; the block with the smallest H is
evicted and L becomes its H, so blocks that are not used age relative to
the rest. With equal costs it is LRU.

Prefix-aware: only leaves of the prefix tree are evicted, blocks that no
cached block continues (the parent of a block is the one before it in its
request, fixed at its first access). A cached block whose parent is gone
can never be a prefix hit, so evicting a parent before its children only
strands them; leaf-only eviction (as SGLang's radix cache does) releases a
chain from its tail. Among leaves the smallest H goes first, ties to the
least recently used.
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import REQUEST_START, jit, record_hit, serve_jit
from prefix_study.replay.kernels._heap import heap_push, heap_remove, heap_update
from prefix_study.replay.kernels._serve import specialise
from prefix_study.replay.policies import register_policy


@jit
def init(capacity, num_ids, num_accesses, num_categories):
    regs = np.zeros(3, dtype=np.int64)  # blocks held, capacity, leaves in the heap
    regs[1] = capacity
    return (regs,
            np.zeros(1, dtype=np.float64),                          # L, the inflation
            np.zeros(num_ids, dtype=np.bool_),                      # cached
            np.full(num_ids, -2, dtype=np.int32),                   # parent: -2 unseen, -1 root
            np.zeros(num_ids, dtype=np.int32),                      # cached blocks whose parent it is
            np.zeros(num_ids, dtype=np.float64),                    # H
            np.zeros(num_ids, dtype=np.int64),                      # time of last access
            np.empty(max(0, min(capacity, num_ids)) + 1, dtype=np.int32),  # heap of cached leaves
            np.full(num_ids, -1, dtype=np.int32))                   # where in the heap


@jit
def contains(state, x):
    return state[2][x]


@serve_jit
def serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, fregs, cached, parent, children, value, seq, heap, where = state
    capacity = regs[1]
    if capacity <= 0:
        return 0, 0
    size = regs[0]
    hsize = regs[2]
    inflation = fregs[0]
    nh = 0
    ne = 0
    run = True
    prev = -1
    for i in range(s, e):
        f = flags[i]
        x = ids[i]
        if parent[x] == -2:
            parent[x] = -1 if (f & REQUEST_START) or prev < 0 else prev
        prev = x
        c = cached[x]
        run, nh = record_hit(hits, i, c, f, run, prefix, nh)
        value[x] = inflation + cost[i]
        seq[x] = i
        if c:
            if where[x] >= 0:
                heap_update(heap, where, value, seq, hsize, x)
            continue
        if size == capacity:
            v = heap[0]
            inflation = value[v]
            hsize = heap_remove(heap, where, value, seq, hsize, v)
            cached[v] = False
            if ne < evicted.shape[0]:
                evicted[ne] = v
            ne += 1
            size -= 1
            pv = parent[v]
            if pv >= 0:
                children[pv] -= 1
                if children[pv] == 0 and cached[pv]:
                    hsize = heap_push(heap, where, value, seq, hsize, pv)
            value[x] = inflation + cost[i]
        cached[x] = True
        size += 1
        if children[x] == 0:
            hsize = heap_push(heap, where, value, seq, hsize, x)
        px = parent[x]
        if px >= 0:
            children[px] += 1
            if children[px] == 1 and where[px] >= 0:
                hsize = heap_remove(heap, where, value, seq, hsize, px)
    regs[0] = size
    regs[2] = hsize
    fregs[0] = inflation
    return nh, ne


register_policy(
    "cost_lru",
    "Prefix-aware cost-weighted LRU: GreedyDual (H = L + recompute cost, cost grows with "
    "position) evicting only prefix-tree leaves.",
    specialise(init, serve, contains, __file__),
    needs_context=True,
)

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

from prefix_study.replay.kernels._common import REQUEST_START, count_hit, jit
from prefix_study.replay.kernels._heap import heap_push, heap_remove, heap_update
from prefix_study.replay.policies import register_policy


@register_policy(
    "cost_lru",
    "Prefix-aware cost-weighted LRU: GreedyDual (H = L + recompute cost, cost grows with "
    "position) evicting only prefix-tree leaves.",
    needs_context=True,
)
@jit
def cost_lru(ids, flags, capacity, num_ids, prefix, next_use, position, category, num_categories, cost):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    cached = np.zeros(num_ids, dtype=np.bool_)
    parent = np.full(num_ids, -2, dtype=np.int32)  # -2 unseen, -1 root
    children = np.zeros(num_ids, dtype=np.int32)  # cached blocks whose parent it is
    value = np.zeros(num_ids, dtype=np.float64)  # H
    seq = np.zeros(num_ids, dtype=np.int64)
    heap = np.empty(min(capacity, num_ids) + 1, dtype=np.int32)  # cached leaves
    where = np.full(num_ids, -1, dtype=np.int32)
    hsize = 0
    size = 0
    inflation = 0.0  # L
    run = True
    prev = -1
    for i in range(n):
        f = flags[i]
        x = ids[i]
        if parent[x] == -2:
            parent[x] = -1 if (f & REQUEST_START) or prev < 0 else prev
        prev = x
        c = cached[x]
        h, run = count_hit(c, f, run, prefix)
        hits[i] = h
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
    return hits

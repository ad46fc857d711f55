"""Belady's MIN: evict the block whose next use is furthest in the future.

Needs the whole trace (next_use). Always admits the missed block, like
libCacheSim's Belady, so under block semantics it is the optimal demand-paging
policy. Under prefix semantics it still evicts by next use, which is a strong
heuristic but no longer guaranteed optimal.
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import count_hit, jit
from prefix_study.replay.policies import register_policy


@jit
def _heap_push(keys, vals, size, key, val):
    """Max-heap push; returns the new size."""
    i = size
    keys[i] = key
    vals[i] = val
    while i > 0:
        p = (i - 1) >> 1
        if keys[p] >= keys[i]:
            break
        keys[p], keys[i] = keys[i], keys[p]
        vals[p], vals[i] = vals[i], vals[p]
        i = p
    return size + 1


@jit
def _heap_pop(keys, vals, size):
    """Remove the max; returns the new size (the max was at index 0)."""
    size -= 1
    keys[0] = keys[size]
    vals[0] = vals[size]
    i = 0
    while True:
        l = 2 * i + 1
        if l >= size:
            break
        m = l
        r = l + 1
        if r < size and keys[r] > keys[l]:
            m = r
        if keys[i] >= keys[m]:
            break
        keys[m], keys[i] = keys[i], keys[m]
        vals[m], vals[i] = vals[i], vals[m]
        i = m
    return size


@jit
def belady(ids, flags, capacity, num_ids, prefix, next_use):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    cached = np.zeros(num_ids, dtype=np.bool_)
    current = np.zeros(num_ids, dtype=np.int64)  # next use of each cached block
    # Lazy-deletion heap: an entry is live iff its key equals current[id].
    keys = np.empty(n + 1, dtype=np.int64)
    vals = np.empty(n + 1, dtype=np.int32)
    hsize = 0
    size = 0
    run = True
    for i in range(n):
        x = ids[i]
        c = cached[x]
        h, run = count_hit(c, flags[i], run, prefix)
        hits[i] = h
        if not c:
            if size == capacity:
                while True:
                    k = keys[0]
                    v = vals[0]
                    hsize = _heap_pop(keys, vals, hsize)
                    if cached[v] and current[v] == k:
                        cached[v] = False
                        break
            else:
                size += 1
            cached[x] = True
        current[x] = next_use[i]
        hsize = _heap_push(keys, vals, hsize, next_use[i], x)
    return hits


register_policy("belady", "Belady/MIN: evict the block used furthest in the future (offline optimum for block semantics).",
                kernel=belady, needs_next_use=True)

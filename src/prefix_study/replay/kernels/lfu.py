"""LFU, with dynamic aging (`lfu`) and without (`lfu_plain`).

`lfu_plain` is libCacheSim's LFU.c hit for hit: evict the block with the
fewest accesses since it was inserted; among equals, the one that reached
that count earliest (libCacheSim appends to the tail of a per-frequency list
and evicts its head). Plain LFU never forgets: a block that was hot once
stays cached forever, which a prefix cache with drifting popularity (new
documents, new conversations) cannot afford.

`lfu` adds dynamic aging, LFU-DA as defined by Arlitt et al. ("Evaluating
content management techniques for Web proxy caches", 2000) with unit cost
and size: a block's priority is K = L + F, F its accesses since insertion,
L the priority of the last evicted block (the cache's "age"), set when the
block is inserted or hit; evict the smallest K, ties to the least recently
used. libCacheSim's LFUDA.c differs (it adds the current minimum to the
priority on every hit, K += min, instead of K = L + F), so `lfu` is checked
against a reference implementation of the definition above
(tests/test_replay_policies.py).
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import count_hit, jit
from prefix_study.replay.kernels._heap import heap_push, heap_remove, heap_update
from prefix_study.replay.policies import register_policy


@jit
def _lfu(ids, flags, capacity, num_ids, prefix, aging):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    cached = np.zeros(num_ids, dtype=np.bool_)
    freq = np.zeros(num_ids, dtype=np.float64)  # accesses since insertion
    key = np.zeros(num_ids, dtype=np.float64)  # priority (freq, or L + freq)
    seq = np.zeros(num_ids, dtype=np.int64)  # tie-break: time of last change
    heap = np.empty(min(capacity, num_ids) + 1, dtype=np.int32)
    where = np.full(num_ids, -1, dtype=np.int32)
    size = 0
    age = 0.0  # L
    run = True
    for i in range(n):
        x = ids[i]
        c = cached[x]
        h, run = count_hit(c, flags[i], run, prefix)
        hits[i] = h
        if c:
            freq[x] += 1.0
            key[x] = age + freq[x] if aging else freq[x]
            seq[x] = i
            heap_update(heap, where, key, seq, size, x)
            continue
        if size == capacity:
            v = heap[0]
            if aging:
                age = key[v]
            size = heap_remove(heap, where, key, seq, size, v)
            cached[v] = False
        cached[x] = True
        freq[x] = 1.0
        key[x] = age + 1.0 if aging else 1.0
        seq[x] = i
        size = heap_push(heap, where, key, seq, size, x)
    return hits


@register_policy("lfu", "LFU with dynamic aging (LFU-DA): evict the smallest L + accesses; L = last evicted priority.")
@jit
def lfu(ids, flags, capacity, num_ids, prefix, next_use):
    return _lfu(ids, flags, capacity, num_ids, prefix, True)


@register_policy("lfu_plain", "Plain LFU without aging (libCacheSim's LFU): evict the fewest accesses, FIFO among equals.")
@jit
def lfu_plain(ids, flags, capacity, num_ids, prefix, next_use):
    return _lfu(ids, flags, capacity, num_ids, prefix, False)

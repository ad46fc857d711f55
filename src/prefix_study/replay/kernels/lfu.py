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

from prefix_study.replay.kernels._common import jit, record_hit, serve_jit
from prefix_study.replay.kernels._heap import heap_push, heap_remove, heap_update
from prefix_study.replay.kernels._serve import specialise, with_init
from prefix_study.replay.policies import register_policy


@jit
def _init(capacity, num_ids, aging):
    regs = np.zeros(3, dtype=np.int64)  # size, capacity, aging
    regs[1] = capacity
    regs[2] = aging
    return (regs,
            np.zeros(1, dtype=np.float64),                          # L, the cache's age
            np.zeros(num_ids, dtype=np.bool_),                      # cached
            np.zeros(num_ids, dtype=np.float64),                    # accesses since insertion
            np.zeros(num_ids, dtype=np.float64),                    # priority (freq, or L + freq)
            np.zeros(num_ids, dtype=np.int64),                      # tie-break: time of last change
            np.empty(max(0, min(capacity, num_ids)) + 1, dtype=np.int32),  # heap
            np.full(num_ids, -1, dtype=np.int32))                   # where in the heap


@jit
def init_aging(capacity, num_ids, num_accesses, num_categories):
    return _init(capacity, num_ids, 1)


@jit
def init(capacity, num_ids, num_accesses, num_categories):
    return _init(capacity, num_ids, 0)


@jit
def contains(state, x):
    return state[2][x]


@serve_jit
def serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, fregs, cached, freq, key, seq, heap, where = state
    capacity = regs[1]
    if capacity <= 0:
        return 0, 0
    aging = regs[2] != 0
    size = regs[0]
    age = fregs[0]
    nh = 0
    ne = 0
    run = True
    for i in range(s, e):
        x = ids[i]
        f = flags[i]
        c = cached[x]
        run, nh = record_hit(hits, i, c, f, run, prefix, nh)
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
            if ne < evicted.shape[0]:
                evicted[ne] = v
            ne += 1
        cached[x] = True
        freq[x] = 1.0
        key[x] = age + 1.0 if aging else 1.0
        seq[x] = i
        size = heap_push(heap, where, key, seq, size, x)
    regs[0] = size
    fregs[0] = age
    return nh, ne


LFU = specialise(init, serve, contains, __file__)

register_policy("lfu", "LFU with dynamic aging (LFU-DA): evict the smallest L + accesses; L = last evicted priority.",
                with_init(LFU, init_aging, __file__))
register_policy("lfu_plain", "Plain LFU without aging (libCacheSim's LFU): evict the fewest accesses, FIFO among equals.",
                LFU)

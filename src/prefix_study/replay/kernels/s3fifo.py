"""S3-FIFO (Yang et al., SOSP'23), following libCacheSim's S3FIFO.c.

A small FIFO (10% of capacity), a main FIFO (the rest, a 2-bit clock) and a
ghost FIFO of ids (90% of capacity). Misses enter the small FIFO, or the main
one if the ghost remembers them. Evicting from the small FIFO promotes blocks
hit at least twice there to main, else drops them to the ghost; evicting from
main reinserts blocks with a non-zero counter (decremented). Until the first
eviction, misses go to main once the small FIFO is full. The small FIFO gets at
least one slot (libCacheSim admits nothing below capacity 20).
"""

from __future__ import annotations

import numpy as np

from prefix_study.replay.kernels._common import jit, record_hit, serve_jit
from prefix_study.replay.kernels._dlist import init_lists, pop_tail, push_head, unlink
from prefix_study.replay.kernels._serve import specialise
from prefix_study.replay.policies import register_policy

SMALL_RATIO = 0.1
GHOST_RATIO = 0.9
MOVE_TO_MAIN_THRESHOLD = 2

_NONE, _SMALL, _MAIN, _GHOST = 0, 1, 2, 3


@jit
def init(capacity, num_ids, num_accesses, num_categories):
    # registers: blocks held, capacity, n_small, n_main, n_ghost, has_evicted,
    # small_cap, main_cap, ghost_cap
    regs = np.zeros(9, dtype=np.int64)
    regs[1] = capacity
    if capacity > 0:
        regs[6] = max(1, int(capacity * SMALL_RATIO))
        regs[7] = capacity - regs[6]
        regs[8] = int(capacity * GHOST_RATIO)
    # One pair of link arrays; each id is in at most one queue. Sentinels:
    # num_ids (small), +1 (main), +2 (ghost); prv[sentinel] = queue tail (oldest).
    nxt = np.empty(num_ids + 3, dtype=np.int32)
    prv = np.empty(num_ids + 3, dtype=np.int32)
    init_lists(nxt, prv, num_ids)
    return (regs, nxt, prv, np.zeros(num_ids, dtype=np.uint8), np.zeros(num_ids, dtype=np.int8))


@jit
def contains(state, x):
    w = state[3][x]
    return w == _SMALL or w == _MAIN


@serve_jit
def serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, nxt, prv, where, freq = state
    capacity = regs[1]
    if capacity <= 0:
        return 0, 0
    S = nxt.shape[0] - 3
    M = S + 1
    G = S + 2
    n_small = regs[2]
    n_main = regs[3]
    n_ghost = regs[4]
    has_evicted = regs[5] != 0
    small_cap = regs[6]
    main_cap = regs[7]
    ghost_cap = regs[8]
    nh = 0
    ne = 0
    run = True
    for i in range(s, e):
        x = ids[i]
        f = flags[i]
        w = where[x]
        c = w == _SMALL or w == _MAIN
        run, nh = record_hit(hits, i, c, f, run, prefix, nh)
        if c:
            if freq[x] < 127:
                freq[x] += 1
            continue
        hit_on_ghost = w == _GHOST
        if hit_on_ghost:
            unlink(nxt, prv, x)
            where[x] = _NONE
            n_ghost -= 1
        # Make room for one block.
        while n_small + n_main + 1 > capacity:
            has_evicted = True
            if n_main > main_cap or n_small == 0:
                # Evict from main: reinsert while the counter is non-zero.
                while n_main > 0:
                    t = pop_tail(nxt, prv, M)
                    if freq[t] >= 1:
                        freq[t] = min(freq[t], 3) - 1
                        push_head(nxt, prv, M, t)
                    else:
                        where[t] = _NONE
                        n_main -= 1
                        if ne < evicted.shape[0]:
                            evicted[ne] = t
                        ne += 1
                        break
            else:
                # Evict from small: promote hot blocks, drop one cold to ghost.
                while n_small > 0:
                    t = pop_tail(nxt, prv, S)
                    n_small -= 1
                    if freq[t] >= MOVE_TO_MAIN_THRESHOLD:
                        freq[t] = 0
                        push_head(nxt, prv, M, t)
                        where[t] = _MAIN
                        n_main += 1
                    else:
                        where[t] = _NONE
                        if ne < evicted.shape[0]:
                            evicted[ne] = t
                        ne += 1
                        if ghost_cap > 0:
                            while n_ghost + 1 > ghost_cap:
                                g = pop_tail(nxt, prv, G)
                                where[g] = _NONE
                                n_ghost -= 1
                            push_head(nxt, prv, G, t)
                            where[t] = _GHOST
                            n_ghost += 1
                        break
        freq[x] = 0
        if hit_on_ghost or (not has_evicted and n_small >= small_cap):
            push_head(nxt, prv, M, x)
            where[x] = _MAIN
            n_main += 1
        else:
            push_head(nxt, prv, S, x)
            where[x] = _SMALL
            n_small += 1
    regs[0] = n_small + n_main
    regs[2] = n_small
    regs[3] = n_main
    regs[4] = n_ghost
    regs[5] = has_evicted
    return nh, ne


register_policy("s3fifo", "S3-FIFO: small probationary FIFO + main FIFO (2-bit clock) + ghost ids.",
                specialise(init, serve, contains, __file__))

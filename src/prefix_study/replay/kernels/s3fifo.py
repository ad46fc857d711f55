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

from prefix_study.replay.kernels._common import count_hit, jit
from prefix_study.replay.kernels._dlist import init_lists, pop_tail, push_head, unlink
from prefix_study.replay.policies import register_policy

SMALL_RATIO = 0.1
GHOST_RATIO = 0.9
MOVE_TO_MAIN_THRESHOLD = 2

_NONE, _SMALL, _MAIN, _GHOST = 0, 1, 2, 3


@register_policy("s3fifo", "S3-FIFO: small probationary FIFO + main FIFO (2-bit clock) + ghost ids.")
@jit
def s3fifo(ids, flags, capacity, num_ids, prefix, next_use):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    small_cap = max(1, int(capacity * SMALL_RATIO))
    main_cap = capacity - small_cap
    ghost_cap = int(capacity * GHOST_RATIO)
    # One pair of link arrays; each id is in at most one queue.
    # Sentinels: S (small), M (main), G (ghost); prv[sentinel] = queue tail (oldest).
    S = num_ids
    M = num_ids + 1
    G = num_ids + 2
    nxt = np.empty(num_ids + 3, dtype=np.int32)
    prv = np.empty(num_ids + 3, dtype=np.int32)
    init_lists(nxt, prv, num_ids)
    where = np.zeros(num_ids, dtype=np.uint8)
    freq = np.zeros(num_ids, dtype=np.int8)
    n_small = 0
    n_main = 0
    n_ghost = 0
    has_evicted = False
    run = True
    for i in range(n):
        x = ids[i]
        w = where[x]
        c = w == _SMALL or w == _MAIN
        h, run = count_hit(c, flags[i], run, prefix)
        hits[i] = h
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
    return hits
